import { z } from 'zod';
import type { ChatMessage, GenerationParams } from '@tokenwire/contracts';
import { UpstreamProtocolError, UpstreamReportedError } from '../errors';
import { contentText } from '../internal/content';
import { parseJsonFrame } from '../internal/http';
import type { ProviderChunk } from '../provider';

/** The Responses API events the gateway uses (others, e.g. `response.created`, are ignored). */
const responsesEventSchema = z.object({ type: z.string() }).loose();
const usageSchema = z.object({ input_tokens: z.number().int().optional(), output_tokens: z.number().int().optional() }).nullish();

/** The body of a Responses API request (`POST /responses`, or `response.create` over WebSocket without `stream`). */
export function responsesRequestBody(model: string, messages: ChatMessage[], params: GenerationParams): Record<string, unknown> {
  return {
    model,
    input: messages.filter((m) => m.role !== 'tool').map((m) => ({ role: m.role, content: contentText(m.content) })),
    max_output_tokens: params.maxTokens,
    temperature: params.temperature,
    top_p: params.topP,
  };
}

/**
 * Maps one Responses API event to chunks; `done` is true after the last one.
 * `error` and `response.failed` throw UpstreamReportedError; anything unparseable is UpstreamProtocolError.
 */
export function mapResponsesEvent(raw: string): { chunks: ProviderChunk[]; done: boolean } {
  const parsed = responsesEventSchema.safeParse(parseJsonFrame(raw, 'Responses event'));
  if (!parsed.success) throw new UpstreamProtocolError(`unexpected Responses event: ${raw.slice(0, 200)}`);
  const event = parsed.data as Record<string, unknown> & { type: string };
  switch (event.type) {
    case 'response.output_text.delta':
      return { chunks: typeof event.delta === 'string' && event.delta ? [{ type: 'text-delta', text: event.delta }] : [], done: false };
    case 'response.completed':
    case 'response.incomplete': {
      const response = (event.response ?? {}) as { usage?: unknown; incomplete_details?: { reason?: string } };
      const usage = usageSchema.safeParse(response.usage).data;
      const chunks: ProviderChunk[] = [];
      if (usage) chunks.push({ type: 'usage', usage: { promptTokens: usage.input_tokens, completionTokens: usage.output_tokens } });
      const length = event.type === 'response.incomplete' && response.incomplete_details?.reason === 'max_output_tokens';
      chunks.push({ type: 'finish', reason: length ? 'length' : 'stop', raw: event.type });
      return { chunks, done: true };
    }
    case 'response.failed': {
      const error = (event.response as { error?: { message?: string } } | undefined)?.error;
      throw new UpstreamReportedError(error?.message ?? 'response failed');
    }
    case 'error': {
      const error = (event.error as { message?: string } | undefined) ?? (event as { message?: string });
      throw new UpstreamReportedError(error.message ?? raw.slice(0, 200));
    }
    default:
      return { chunks: [], done: false };
  }
}
