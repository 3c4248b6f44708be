import { chatCompletionObject, type ChunkEvent, type FinishReason, type GatewayError, type OpenAIErrorBody, type UsageEvent } from '@tokenwire/contracts';
import { httpStatusForError, openAIErrorBody } from '../common/api-error';
import type { GenerationSummary } from '../generations/generation-summary';

/** Builds OpenAI chat-completion objects for one generation; the fixed prefix is built once. */
export class OpenAIChunkFormatter {
  private readonly prefix: string;

  constructor(
    readonly id: string,
    readonly model: string,
    readonly created: number,
  ) {
    this.prefix = `{"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},`;
  }

  private frame(rest: string): string {
    return `data: ${this.prefix}${rest}}\n\n`;
  }

  role(): string {
    return this.frame(`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]`);
  }

  chunk(event: ChunkEvent): string {
    const delta: Record<string, unknown> = {};
    if (event.delta) delta.content = event.delta;
    if (event.toolCalls) {
      delta.tool_calls = event.toolCalls.map((call) => ({
        index: call.index,
        ...(call.id ? { id: call.id, type: 'function' } : {}),
        function: { ...(call.name ? { name: call.name } : {}), ...(call.arguments !== undefined ? { arguments: call.arguments } : {}) },
      }));
    }
    return this.frame(`"choices":[{"index":0,"delta":${JSON.stringify(delta)},"finish_reason":null}]`);
  }

  /** The finishing frame; `stop_reason` (vLLM's name) says which stop sequence ended the reply, when known. */
  finish(reason: FinishReason, stopSequence?: string): string {
    const stopReason = stopSequence !== undefined ? `,"stop_reason":${JSON.stringify(stopSequence)}` : '';
    return this.frame(`"choices":[{"index":0,"delta":{},"finish_reason":"${reason}"${stopReason}}]`);
  }

  usage(event: Pick<UsageEvent, 'promptTokens' | 'completionTokens' | 'totalTokens'>): string {
    return this.frame(`"choices":[],"usage":${JSON.stringify(openAIUsage(event))}`);
  }

  /** An error frame inside a stream that already started (no [DONE] after it). */
  static error(error: GatewayError): string {
    return `data: ${JSON.stringify(openAIError(error).body)}\n\n`;
  }

  static readonly DONE = 'data: [DONE]\n\n';

  /** The non-streaming `chat.completion` object. */
  completion(summary: GenerationSummary) {
    return chatCompletionObject({ id: this.id, model: this.model, created: this.created, ...summary });
  }
}

function openAIUsage(u: { promptTokens?: number; completionTokens?: number; totalTokens?: number }) {
  return {
    prompt_tokens: u.promptTokens ?? 0,
    completion_tokens: u.completionTokens ?? 0,
    total_tokens: u.totalTokens ?? (u.promptTokens ?? 0) + (u.completionTokens ?? 0),
  };
}

/**
 * An error as the OpenAI route answers it: the upstream's status, and its `code`, `type` and
 * `param` when it gave them (so `openai` raises e.g. BadRequestError with code
 * "context_length_exceeded"), else the gateway's code. `x-should-retry` passes on whether a new
 * attempt may help, which the SDK obeys before its own status rule.
 */
export function openAIError(error: GatewayError): { status: number; body: OpenAIErrorBody; headers: Record<string, string> } {
  const status = httpStatusForError(error);
  const body = openAIErrorBody(status, error.upstreamCode ?? error.code, error.message, error.param);
  if (error.upstreamType) body.error.type = error.upstreamType;
  return { status, body, headers: error.retryable === undefined ? {} : { 'x-should-retry': String(error.retryable) } };
}
