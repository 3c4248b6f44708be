import { z } from 'zod';
import { UpstreamClosedError, UpstreamProtocolError, UpstreamReportedError, finalAfterOutput } from '../errors';
import { parseJsonFrame, postForStream, sseMessages } from '../internal/http';
import {
  PROVIDER_SPEC_VERSION,
  type LanguageModelProvider,
  type ProviderCapabilities,
  type ProviderChunk,
  type ProviderFinishReason,
  type ProviderRequest,
  type StreamOptions,
} from '../provider';
import { KNOWN_ANTHROPIC_DELTAS, KNOWN_ANTHROPIC_EVENTS, anthropicEventSchema } from './anthropic-api';
import { mapAnthropicRequest } from './map-anthropic-request';

export const anthropicOptionsSchema = z.object({
  /** API root, without `/v1`. */
  baseUrl: z.url().default('https://api.anthropic.com'),
  apiKey: z.string().optional(),
  /** The Messages API requires max_tokens; used when the request has none. */
  defaultMaxTokens: z.number().int().positive().default(1024),
  anthropicVersion: z.string().default('2023-06-01'),
});
export type AnthropicOptions = z.input<typeof anthropicOptionsSchema>;

const STOP_REASONS: Record<string, ProviderFinishReason> = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', refusal: 'content_filter' };

/**
 * The HTTP status Anthropic answers with for the error types it may also send inside a stream,
 * for those a retry may help (docs.anthropic.com, "Errors"); any other in-stream error is final.
 */
const RETRYABLE_STREAM_ERRORS: Record<string, number> = { rate_limit_error: 429, api_error: 500, overloaded_error: 529 };

/** Anthropic's Messages API with `stream: true` (SSE). */
export class AnthropicProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'anthropic';
  // Anthropic's temperature runs 0-1 (OpenAI's 0-2), and it has no seed or penalties.
  readonly capabilities: ProviderCapabilities = {
    streaming: true,
    tools: true,
    usage: true,
    images: 'url',
    params: { temperature: { min: 0, max: 1 }, topP: true, maxTokens: true, stop: true },
  };
  private readonly options: z.output<typeof anthropicOptionsSchema>;

  constructor(options: AnthropicOptions = {}) {
    this.options = anthropicOptionsSchema.parse(options);
  }

  async *stream(request: ProviderRequest, { signal, log, heartbeat }: StreamOptions): AsyncIterable<ProviderChunk> {
    const body = mapAnthropicRequest(request, this.options.defaultMaxTokens);
    const headers = { 'anthropic-version': this.options.anthropicVersion, ...(this.options.apiKey ? { 'x-api-key': this.options.apiKey } : {}) };
    const stream = await postForStream(`${this.options.baseUrl.replace(/\/+$/, '')}/v1/messages`, body, headers, signal);

    let promptTokens: number | undefined;
    let completionTokens: number | undefined;
    let finish: ProviderFinishReason = 'stop';
    let rawFinish: string | undefined;
    let stopSequence: string | undefined;
    const toolIndex = new Map<number, number>(); // content block index → tool call index
    let sent = false;
    try {
      for await (const message of sseMessages(stream, signal, heartbeat, isMessageStop)) {
        const json = parseJsonFrame(message.data) as { type?: unknown; delta?: { type?: unknown } };
        // Hot path: a well-formed text delta skips schema validation (one per token: 0.5-1 µs less each); anything else is checked fully.
        if (isTextDelta(json)) {
          sent = true;
          yield { type: 'text-delta', text: json.delta.text };
          continue;
        }
        // "We may occasionally add new event types": skip what is unknown; what is known must parse.
        const unknownType = typeof json?.type === 'string' && !KNOWN_ANTHROPIC_EVENTS.has(json.type) ? json.type : undefined;
        const unknownDelta = json?.type === 'content_block_delta' && typeof json.delta?.type === 'string' && !KNOWN_ANTHROPIC_DELTAS.has(json.delta.type) ? json.delta.type : undefined;
        if (unknownType || unknownDelta) {
          log?.debug({ eventType: unknownType, deltaType: unknownDelta }, 'unknown Anthropic event skipped');
          continue;
        }
        const parsed = anthropicEventSchema.safeParse(json);
        if (!parsed.success) throw new UpstreamProtocolError(`unexpected event: ${message.data.slice(0, 200)}`);
        const event = parsed.data;
        switch (event.type) {
          case 'message_start':
            promptTokens = event.message.usage?.input_tokens;
            completionTokens = event.message.usage?.output_tokens;
            break;
          case 'content_block_start':
            if (event.content_block.type === 'tool_use') {
              const index = toolIndex.size;
              toolIndex.set(event.index, index);
              sent = true;
              yield { type: 'tool-call-delta', index, id: event.content_block.id, name: event.content_block.name };
            }
            break;
          case 'content_block_delta':
            sent = true;
            if (event.delta.type === 'text_delta') yield { type: 'text-delta', text: event.delta.text };
            else if (event.delta.type === 'input_json_delta') yield { type: 'tool-call-delta', index: toolIndex.get(event.index) ?? 0, arguments: event.delta.partial_json };
            break;
          case 'message_delta':
            if (event.delta.stop_reason) {
              rawFinish = event.delta.stop_reason;
              finish = STOP_REASONS[event.delta.stop_reason] ?? 'stop';
              if (event.delta.stop_reason === 'stop_sequence' && event.delta.stop_sequence) stopSequence = event.delta.stop_sequence;
            }
            completionTokens = event.usage?.output_tokens ?? completionTokens;
            promptTokens = event.usage?.input_tokens ?? promptTokens;
            break;
          case 'message_stop':
            yield { type: 'usage', usage: { promptTokens, completionTokens } };
            yield { type: 'finish', reason: finish, raw: rawFinish, ...(stopSequence !== undefined ? { stopSequence } : {}) };
            return;
          case 'error': {
            const status = RETRYABLE_STREAM_ERRORS[event.error.type];
            throw new UpstreamReportedError(
              `${event.error.type}: ${event.error.message}`,
              { type: event.error.type, code: event.error.type, message: event.error.message },
              { retryable: status !== undefined, status },
            );
          }
        }
      }
      throw new UpstreamClosedError('Anthropic closed the stream before message_stop');
    } catch (error) {
      throw finalAfterOutput(error, sent);
    }
  }
}

/** Anthropic's last SSE event: a call that ends there keeps its connection for the next. */
const isMessageStop = (message: { event?: string; data: string }) => message.event === 'message_stop' || message.data.includes('"type":"message_stop"');

/** A `content_block_delta` carrying text, exactly as anthropicEventSchema would accept it. */
function isTextDelta(json: unknown): json is { type: 'content_block_delta'; index: number; delta: { type: 'text_delta'; text: string } } {
  if (typeof json !== 'object' || json === null) return false;
  const { type, index, delta } = json as { type?: unknown; index?: unknown; delta?: unknown };
  if (type !== 'content_block_delta' || !Number.isInteger(index) || typeof delta !== 'object' || delta === null) return false;
  const { type: deltaType, text } = delta as { type?: unknown; text?: unknown };
  return deltaType === 'text_delta' && typeof text === 'string';
}
