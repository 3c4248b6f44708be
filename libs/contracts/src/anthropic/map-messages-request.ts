import type { ChatCompletionRequest, ChatMessage } from '../chat/chat-request.schema';
import type { FinishReason } from '../stream/stream-event.schema';
import type { AnthropicContentBlock, AnthropicMessagesRequest } from './messages-request.schema';

type UserPart = Extract<ChatMessage, { role: 'user' }>['content'] extends infer C ? (C extends Array<infer P> ? P : never) : never;
type ImageBlock = Extract<AnthropicContentBlock, { type: 'image' }>;

/**
 * An Anthropic Messages request as the provider-neutral chat request every generation runs on:
 * `system` → a system message; `tool_use` blocks → the assistant's `tool_calls` (input as JSON
 * arguments); `tool_result` blocks → `tool` messages (before the rest of that user turn, as the
 * OpenAI shape orders them); images → `image_url` parts (base64 as a data URL).
 */
export function anthropicToChatRequest(request: Omit<AnthropicMessagesRequest, 'max_tokens'> & { max_tokens?: number }): ChatCompletionRequest {
  const messages: ChatMessage[] = [];
  const system = typeof request.system === 'string' ? request.system : request.system?.map((block) => block.text).join('\n');
  if (system) messages.push({ role: 'system', content: system });
  for (const message of request.messages) {
    if (typeof message.content === 'string') messages.push({ role: message.role, content: message.content });
    else if (message.role === 'assistant') messages.push(assistantMessage(message.content));
    else messages.push(...userMessages(message.content));
  }
  const choice = request.tool_choice;
  return {
    model: request.model,
    messages,
    max_tokens: request.max_tokens,
    temperature: request.temperature,
    top_p: request.top_p,
    stop: request.stop_sequences?.length ? request.stop_sequences : undefined,
    user: request.metadata?.user_id ?? undefined,
    tools: request.tools?.map((tool) => ({ type: 'function' as const, function: { name: tool.name, description: tool.description, parameters: tool.input_schema } })),
    tool_choice:
      choice === undefined
        ? undefined
        : choice.type === 'any'
          ? 'required'
          : choice.type === 'tool'
            ? { type: 'function', function: { name: choice.name } }
            : choice.type,
  };
}

function assistantMessage(blocks: AnthropicContentBlock[]): ChatMessage {
  const text = blocks.flatMap((block) => (block.type === 'text' ? [block.text] : [])).join('');
  const toolCalls = blocks.flatMap((block) =>
    block.type === 'tool_use' ? [{ id: block.id, type: 'function' as const, function: { name: block.name, arguments: JSON.stringify(block.input) } }] : [],
  );
  return { role: 'assistant', content: text || (toolCalls.length ? null : ''), ...(toolCalls.length ? { tool_calls: toolCalls } : {}) };
}

/** A user turn: its tool results first (one `tool` message each), then its text and images, if any. */
function userMessages(blocks: AnthropicContentBlock[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  const parts: UserPart[] = [];
  for (const block of blocks) {
    if (block.type === 'text') parts.push({ type: 'text', text: block.text });
    else if (block.type === 'image') parts.push(imagePart(block));
    else if (block.type === 'tool_result') {
      const content = typeof block.content === 'string' ? [{ type: 'text' as const, text: block.content }] : (block.content ?? []);
      const text = content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('');
      // The chat shape has no error flag on a tool message: the text says it.
      messages.push({ role: 'tool', tool_call_id: block.tool_use_id, content: block.is_error ? `[tool error] ${text}` : text });
      for (const part of content) if (part.type === 'image') parts.push(imagePart(part));
    }
  }
  if (parts.length) messages.push({ role: 'user', content: parts.every((part) => part.type === 'text') ? parts.map((part) => part.text).join('') : parts });
  return messages;
}

function imagePart(block: ImageBlock): UserPart {
  const url = block.source.type === 'base64' ? `data:${block.source.media_type};base64,${block.source.data}` : block.source.url;
  return { type: 'image_url', image_url: { url } };
}

export type AnthropicStopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

/** A generation's finish reason (and the stop sequence that ended it, when known) as Anthropic's `stop_reason`. */
export function anthropicStopReason(reason: FinishReason | undefined, stopSequence?: string): AnthropicStopReason {
  if (reason === 'stop' && stopSequence !== undefined) return 'stop_sequence';
  switch (reason) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}
