import { z } from 'zod';
import { UpstreamClosedError, UpstreamProtocolError, UpstreamReportedError } from '../errors';
import { contentText } from '../internal/content';
import { parseJsonFrame, postForStream, sseMessages } from '../internal/http';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider, type ProviderChunk, type ProviderFinishReason, type ProviderRequest, type StreamOptions } from '../provider';
import { anthropicEventSchema } from './anthropic-api';

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

/** Anthropic's Messages API with `stream: true` (SSE). */
export class AnthropicProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'anthropic';
  readonly capabilities = { streaming: true, tools: true, usage: true } as const;
  private readonly options: z.output<typeof anthropicOptionsSchema>;

  constructor(options: AnthropicOptions = {}) {
    this.options = anthropicOptionsSchema.parse(options);
  }

  async *stream(request: ProviderRequest, { signal }: StreamOptions): AsyncIterable<ProviderChunk> {
    const p = request.params;
    const system = request.messages.filter((m) => m.role === 'system' || m.role === 'developer').map((m) => contentText(m.content)).join('\n\n');
    const body = {
      model: request.model,
      stream: true,
      max_tokens: p.maxTokens ?? this.options.defaultMaxTokens,
      ...(system ? { system } : {}),
      messages: request.messages
        .filter((m) => m.role === 'user' || m.role === 'assistant')
        .map((m) => ({ role: m.role, content: contentText(m.content) })),
      temperature: p.temperature,
      top_p: p.topP,
      stop_sequences: p.stop,
      tools: p.tools?.map((t) => ({ name: t.function.name, description: t.function.description, input_schema: t.function.parameters ?? { type: 'object' } })),
    };
    const headers = { 'anthropic-version': this.options.anthropicVersion, ...(this.options.apiKey ? { 'x-api-key': this.options.apiKey } : {}) };
    const stream = await postForStream(`${this.options.baseUrl.replace(/\/+$/, '')}/v1/messages`, body, headers, signal);

    let promptTokens: number | undefined;
    let completionTokens: number | undefined;
    let finish: ProviderFinishReason = 'stop';
    let rawFinish: string | undefined;
    const toolIndex = new Map<number, number>(); // content block index → tool call index
    for await (const message of sseMessages(stream, signal)) {
      const parsed = anthropicEventSchema.safeParse(parseJsonFrame(message.data));
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
            yield { type: 'tool-call-delta', index, id: event.content_block.id, name: event.content_block.name };
          }
          break;
        case 'content_block_delta':
          if (event.delta.type === 'text_delta') yield { type: 'text-delta', text: event.delta.text };
          else if (event.delta.type === 'input_json_delta') yield { type: 'tool-call-delta', index: toolIndex.get(event.index) ?? 0, arguments: event.delta.partial_json };
          break;
        case 'message_delta':
          if (event.delta.stop_reason) {
            rawFinish = event.delta.stop_reason;
            finish = STOP_REASONS[event.delta.stop_reason] ?? 'stop';
          }
          completionTokens = event.usage?.output_tokens ?? completionTokens;
          promptTokens = event.usage?.input_tokens ?? promptTokens;
          break;
        case 'message_stop':
          yield { type: 'usage', usage: { promptTokens, completionTokens } };
          yield { type: 'finish', reason: finish, raw: rawFinish };
          return;
        case 'error':
          throw new UpstreamReportedError(`${event.error.type}: ${event.error.message}`);
      }
    }
    throw new UpstreamClosedError('Anthropic closed the stream before message_stop');
  }
}

