import { z } from 'zod';
import type { ChatMessage, GenerationParams } from '@tokenwire/contracts';
import { UpstreamHttpError, UpstreamProtocolError, UpstreamReportedError } from '../errors';
import { contentText, toolChoice } from '../internal/content';
import { parseJsonFrame } from '../internal/http';
import type { ProviderCapabilities, ProviderChunk, ProviderFinishReason, ProviderLogger } from '../provider';

/** What the Responses API takes (both over HTTP and WebSocket): no stop, seed or penalties. */
export const RESPONSES_CAPABILITIES: ProviderCapabilities = {
  streaming: true,
  tools: true,
  usage: true,
  images: 'url',
  params: { temperature: true, topP: true, maxTokens: true },
};

const responsesEventSchema = z.object({ type: z.string() }).loose();
const usageSchema = z.object({ input_tokens: z.number().int().optional(), output_tokens: z.number().int().optional() }).nullish();
const functionCallItemSchema = z.object({
  type: z.literal('function_call'),
  id: z.string().optional(),
  call_id: z.string().optional(),
  name: z.string(),
  arguments: z.string().default(''),
});

/** One chat message as Responses API input items (tool calls and tool results are items of their own). */
function inputItems(message: ChatMessage): unknown[] {
  switch (message.role) {
    case 'tool':
      return [{ type: 'function_call_output', call_id: message.tool_call_id, output: contentText(message.content) }];
    case 'assistant': {
      const text = contentText(message.content);
      return [
        ...(text ? [{ role: 'assistant', content: text }] : []),
        ...(message.tool_calls ?? []).map((call) => ({ type: 'function_call', call_id: call.id, name: call.function.name, arguments: call.function.arguments })),
      ];
    }
    case 'user':
      if (typeof message.content === 'string') return [{ role: 'user', content: message.content }];
      return [
        {
          role: 'user',
          content: message.content.map((part) =>
            part.type === 'text'
              ? { type: 'input_text', text: part.text }
              : { type: 'input_image', image_url: part.image_url.url, detail: part.image_url.detail ?? 'auto' },
          ),
        },
      ];
    default:
      return [{ role: message.role, content: contentText(message.content) }];
  }
}

/** The body of a Responses API request (`POST /responses`, or `response.create` over WebSocket without `stream`). */
export function responsesRequestBody(model: string, messages: ChatMessage[], params: GenerationParams): Record<string, unknown> {
  const choice = toolChoice(params.toolChoice);
  return {
    model,
    input: messages.flatMap(inputItems),
    max_output_tokens: params.maxTokens,
    temperature: params.temperature,
    top_p: params.topP,
    tools: params.tools?.map((tool) => ({
      type: 'function',
      name: tool.function.name,
      description: tool.function.description,
      parameters: tool.function.parameters ?? { type: 'object', properties: {} },
      ...(tool.function.strict != null ? { strict: tool.function.strict } : {}),
    })),
    tool_choice: choice?.type === 'function' ? { type: 'function', name: choice.name } : choice?.type,
  };
}

/**
 * Whether a failure the Responses API reports inside the stream may pass on a retry, as its HTTP twin
 * would: `server_error` (500) and `rate_limit_exceeded` (429). Before the first token the router then
 * retries it like that status; anything else (a bad request, a content policy) is final.
 */
function transientFailure(code: string | undefined): { retryable: boolean; status?: number } {
  if (code === 'server_error') return { retryable: true, status: 500 };
  if (code === 'rate_limit_exceeded') return { retryable: true, status: 429 };
  return { retryable: false };
}

/**
 * Maps the Responses API events of one response to chunks; `done` is true after the last one.
 * Text deltas become text; `function_call` output items become tool-call deltas (id = the
 * item's `call_id`, the one a `function_call_output` answers). `error` and `response.failed`
 * throw UpstreamReportedError; an event that is not JSON is UpstreamProtocolError. Event types
 * it does not know are skipped: OpenAI adds new ones.
 */
export class ResponsesEventMapper {
  /** Function-call items by item id: their tool-call index and whether arguments arrived as deltas. */
  private readonly calls = new Map<string, { index: number; streamed: boolean }>();
  private callCount = 0;

  constructor(private readonly log?: ProviderLogger) {}

  map(raw: string): { chunks: ProviderChunk[]; done: boolean } {
    const parsed = responsesEventSchema.safeParse(parseJsonFrame(raw, 'Responses event'));
    if (!parsed.success) throw new UpstreamProtocolError(`unexpected Responses event: ${raw.slice(0, 200)}`);
    const event = parsed.data as Record<string, unknown> & { type: string };
    switch (event.type) {
      case 'response.output_text.delta':
        return { chunks: typeof event.delta === 'string' && event.delta ? [{ type: 'text-delta', text: event.delta }] : [], done: false };
      case 'response.output_item.added':
      case 'response.output_item.done':
        return { chunks: this.functionCallItem(event), done: false };
      case 'response.function_call_arguments.delta': {
        const call = this.call(event);
        if (!call || typeof event.delta !== 'string' || !event.delta) return { chunks: [], done: false };
        call.streamed = true;
        return { chunks: [{ type: 'tool-call-delta', index: call.index, arguments: event.delta }], done: false };
      }
      case 'response.function_call_arguments.done': {
        // Only servers that sent no deltas need the whole arguments here.
        const call = this.call(event);
        if (!call || call.streamed || typeof event.arguments !== 'string' || !event.arguments) return { chunks: [], done: false };
        call.streamed = true;
        return { chunks: [{ type: 'tool-call-delta', index: call.index, arguments: event.arguments }], done: false };
      }
      case 'response.completed':
      case 'response.incomplete': {
        const response = (event.response ?? {}) as { usage?: unknown; incomplete_details?: { reason?: string } };
        const usage = usageSchema.safeParse(response.usage).data;
        const chunks: ProviderChunk[] = [];
        if (usage) chunks.push({ type: 'usage', usage: { promptTokens: usage.input_tokens, completionTokens: usage.output_tokens } });
        const incomplete = event.type === 'response.incomplete' ? response.incomplete_details?.reason : undefined;
        const reason: ProviderFinishReason =
          incomplete === 'max_output_tokens' ? 'length' : incomplete === 'content_filter' ? 'content_filter' : this.callCount ? 'tool_calls' : 'stop';
        chunks.push({ type: 'finish', reason, raw: incomplete ?? event.type });
        return { chunks, done: true };
      }
      case 'response.failed': {
        const error = (event.response as { error?: { message?: string; code?: string } } | undefined)?.error;
        throw new UpstreamReportedError(error?.message ?? 'response failed', { code: error?.code, message: error?.message }, transientFailure(error?.code));
      }
      case 'error': {
        const error = (event.error as { message?: string; code?: string; type?: string; param?: string } | undefined) ?? (event as { message?: string });
        // WebSocket mode's errors carry the HTTP status the same refusal would have had over HTTP.
        if (typeof event.status === 'number' && event.status >= 400) throw new UpstreamHttpError(event.status, JSON.stringify(event), undefined, { upstream: error });
        const { code, type } = error as { code?: string; type?: string };
        throw new UpstreamReportedError(error.message ?? raw.slice(0, 200), error, transientFailure(code ?? type));
      }
      default:
        if (!event.type.startsWith('response.')) this.log?.debug({ eventType: event.type }, 'unknown Responses event type skipped');
        return { chunks: [], done: false };
    }
  }

  private functionCallItem(event: Record<string, unknown>): ProviderChunk[] {
    const item = functionCallItemSchema.safeParse(event.item);
    if (!item.success) return [];
    const key = item.data.id ?? item.data.call_id ?? `output-${String(event.output_index)}`;
    if (this.calls.has(key)) {
      // output_item.done repeats the call; only arguments never sent are news.
      const call = this.calls.get(key)!;
      if (call.streamed || !item.data.arguments) return [];
      call.streamed = true;
      return [{ type: 'tool-call-delta', index: call.index, arguments: item.data.arguments }];
    }
    const call = { index: this.callCount++, streamed: item.data.arguments !== '' };
    this.calls.set(key, call);
    if (typeof event.output_index === 'number') this.calls.set(`output-${event.output_index}`, call);
    return [{ type: 'tool-call-delta', index: call.index, id: item.data.call_id ?? item.data.id, name: item.data.name, ...(item.data.arguments ? { arguments: item.data.arguments } : {}) }];
  }

  private call(event: Record<string, unknown>) {
    return (typeof event.item_id === 'string' ? this.calls.get(event.item_id) : undefined) ?? this.calls.get(`output-${String(event.output_index)}`);
  }
}
