import { z } from 'zod';
import { UpstreamClosedError, UpstreamProtocolError, UpstreamReportedError, finalAfterOutput } from '../errors';
import { parseJsonFrame, postForStream, sseMessages } from '../internal/http';
import {
  PROVIDER_SPEC_VERSION,
  type LanguageModelProvider,
  type ProviderCapabilities,
  type ProviderChunk,
  type ProviderRequest,
  type StreamOptions,
} from '../provider';
import { openAIChunkSchema, openAIStreamErrorSchema } from './openai-compatible-api';
import { mapOpenAIChunk, mapOpenAIRequest } from './map-openai-chunk';
import { RESPONSES_CAPABILITIES, ResponsesEventMapper, responsesRequestBody } from '../responses/map-responses-event';

interface PlainTextChunk {
  choices: [{ delta?: { content?: string; role?: string }; finish_reason?: null }] | [];
}

/** One choice whose delta holds only text (or nothing), no finish, no tool calls, no usage: the common frame. */
function isPlainTextChunk(json: unknown): json is PlainTextChunk {
  if (typeof json !== 'object' || json === null) return false;
  const { choices, usage } = json as { choices?: unknown; usage?: unknown };
  if (usage != null || !Array.isArray(choices) || choices.length !== 1) return false;
  const choice = choices[0] as { delta?: unknown; finish_reason?: unknown };
  if (typeof choice !== 'object' || choice === null || choice.finish_reason != null) return false;
  const delta = choice.delta as { content?: unknown; tool_calls?: unknown } | undefined;
  if (delta === undefined) return true;
  if (typeof delta !== 'object' || delta === null || delta.tool_calls != null) return false;
  return delta.content === undefined || delta.content === null || typeof delta.content === 'string';
}

/**
 * Whether an in-stream error may be retried, judged as its HTTP twin would be: vLLM puts the HTTP
 * status in `code` (408/409/429/5xx retryable, as UpstreamHttpError), OpenAI says `server_error`.
 */
function inStreamRetry(type: string | null | undefined, code: unknown): { retryable: boolean; status?: number } {
  const status = typeof code === 'number' && code >= 400 && code < 600 ? code : undefined;
  if (status !== undefined) return { status, retryable: status === 408 || status === 409 || status === 429 || status >= 500 };
  return { retryable: type === 'server_error' };
}

export const openAICompatibleOptionsSchema = z.object({
  /** Base URL up to and including `/v1`, e.g. `http://127.0.0.1:11434/v1` for Ollama. */
  baseUrl: z.url(),
  apiKey: z.string().optional(),
  /** Extra request headers (e.g. an organisation id). */
  headers: z.record(z.string(), z.string()).default({}),
  /** Ask for the final usage chunk (`stream_options.include_usage`); turn off for servers that reject it. */
  includeUsage: z.boolean().default(true),
  /** `chat`: POST /chat/completions. `responses`: POST /responses (the Responses API's streaming events). */
  api: z.enum(['chat', 'responses']).default('chat'),
});
export type OpenAICompatibleOptions = z.input<typeof openAICompatibleOptionsSchema>;

/** Any server that speaks OpenAI's `POST /chat/completions` with `stream: true` (vLLM, llama.cpp, Ollama's /v1 …). */
export class OpenAICompatibleProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'openai-compatible';
  readonly capabilities: ProviderCapabilities;
  private readonly options: z.output<typeof openAICompatibleOptionsSchema>;

  constructor(options: OpenAICompatibleOptions) {
    this.options = openAICompatibleOptionsSchema.parse(options);
    // Chat Completions takes every field of the request as is; the Responses API fewer.
    this.capabilities = this.options.api === 'responses' ? RESPONSES_CAPABILITIES : { streaming: true, tools: true, usage: true, images: 'url' };
  }

  // Returns the generator rather than delegating with yield*: one async-generator hop less per token.
  stream(request: ProviderRequest, options: StreamOptions): AsyncIterable<ProviderChunk> {
    return this.options.api === 'responses' ? this.streamResponses(request, options) : this.streamChat(request, options);
  }

  private headers(): Record<string, string> {
    return { accept: 'text/event-stream', ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}), ...this.options.headers };
  }

  /** The Responses API over HTTP SSE: `response.output_text.delta` … `response.completed`. */
  private async *streamResponses(request: ProviderRequest, { signal, log, heartbeat }: StreamOptions): AsyncIterable<ProviderChunk> {
    const url = `${this.options.baseUrl.replace(/\/+$/, '')}/responses`;
    const body = await postForStream(url, { ...responsesRequestBody(request.model, request.messages, request.params), stream: true }, this.headers(), signal);
    const mapper = new ResponsesEventMapper(log);
    let sent = false;
    try {
      for await (const message of sseMessages(body, signal, heartbeat)) {
        const { chunks, done } = mapper.map(message.data);
        if (done) {
          yield* chunks;
          return;
        }
        sent ||= chunks.length > 0;
        yield* chunks;
      }
      throw new UpstreamClosedError('upstream closed the stream before response.completed');
    } catch (error) {
      throw finalAfterOutput(error, sent);
    }
  }

  private async *streamChat(request: ProviderRequest, { signal, heartbeat }: StreamOptions): AsyncIterable<ProviderChunk> {
    const url = `${this.options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    const body = await postForStream(url, mapOpenAIRequest(request, this.options.includeUsage), this.headers(), signal);
    let sawFinish = false;
    let sent = false;
    try {
      for await (const message of sseMessages(body, signal, heartbeat, isDone)) {
        if (isDone(message)) return;
        const json = parseJsonFrame(message.data);
        // Hot path: a well-formed text chunk skips schema validation (one per token); anything else is checked fully.
        if (isPlainTextChunk(json)) {
          const content = json.choices[0]?.delta?.content;
          if (content) {
            sent = true;
            yield { type: 'text-delta', text: content };
          }
          continue;
        }
        const upstreamError = openAIStreamErrorSchema.safeParse(json);
        if (upstreamError.success) {
          const { message: text, type, code, param } = upstreamError.data.error;
          throw new UpstreamReportedError(
            text ?? JSON.stringify(json),
            { message: text, type: type ?? undefined, code: code == null ? undefined : String(code), param: param ?? undefined },
            inStreamRetry(type, code),
          );
        }
        const chunk = openAIChunkSchema.safeParse(json);
        if (!chunk.success) throw new UpstreamProtocolError(`unexpected chunk shape: ${z.prettifyError(chunk.error)}`);
        for (const part of mapOpenAIChunk(chunk.data)) {
          if (part.type === 'finish') sawFinish = true;
          else if (part.type !== 'usage') sent = true;
          yield part;
        }
      }
      if (!sawFinish) throw new UpstreamClosedError('upstream closed the stream without [DONE] or a finish_reason');
    } catch (error) {
      throw finalAfterOutput(error, sent);
    }
  }
}

/** OpenAI's last SSE message. */
const isDone = (message: { data: string }) => message.data === '[DONE]';
