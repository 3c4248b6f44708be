import type { ChatMessage } from './chat-request.schema';

/**
 * Estimated prompt tokens of messages the upstream did not count: 4 characters of the
 * JSON of each message's content per token (the usual rule of thumb for English text).
 * Used for usage when an upstream reports none, and by `POST /v1/messages/count_tokens`.
 */
export function estimatePromptTokens(messages: ReadonlyArray<Pick<ChatMessage, 'content'>>, extra: unknown[] = []): number {
  const chars = messages.reduce((sum, m) => sum + JSON.stringify(m.content ?? '').length, 0) + extra.reduce<number>((sum, x) => sum + JSON.stringify(x ?? '').length, 0);
  return Math.ceil(chars / 4);
}
