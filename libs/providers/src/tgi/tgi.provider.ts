import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { z } from 'zod';
import { UpstreamClosedError, UpstreamProtocolError, UpstreamReportedError } from '../errors';
import { chatTranscript } from '../internal/content';
import { postForStream, readText } from '../internal/http';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider, type ProviderChunk, type ProviderRequest, type StreamOptions } from '../provider';

export const tgiOptionsSchema = z.object({
  /** TGI's root URL. */
  baseUrl: z.url(),
  apiKey: z.string().optional(),
  /** `transcript`: every message as `role: text` lines then `assistant:`; `last-user`: only the last user message. */
  prompt: z.enum(['transcript', 'last-user']).default('transcript'),
});
export type TgiOptions = z.input<typeof tgiOptionsSchema>;

const tgiEventSchema = z.union([
  z.object({ error: z.string(), error_type: z.string().optional() }),
  z.object({
    token: z.object({ text: z.string(), special: z.boolean().default(false) }),
    details: z.object({ finish_reason: z.string(), generated_tokens: z.number().int().optional() }).nullish(),
  }),
]);

/** Hugging Face text-generation-inference `POST /generate_stream` (SSE). */
export class TgiProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'tgi';
  readonly capabilities = { streaming: true, tools: false, usage: true } as const;
  private readonly options: z.output<typeof tgiOptionsSchema>;

  constructor(options: TgiOptions) {
    this.options = tgiOptionsSchema.parse(options);
  }

  async *stream(request: ProviderRequest, { signal }: StreamOptions): AsyncIterable<ProviderChunk> {
    const p = request.params;
    const body = {
      inputs: chatTranscript(request.messages, this.options.prompt),
      parameters: { max_new_tokens: p.maxTokens, temperature: p.temperature, top_p: p.topP, stop: p.stop, seed: p.seed, details: true },
    };
    const headers = { accept: 'text/event-stream', ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}) };
    const stream = await postForStream(`${this.options.baseUrl.replace(/\/+$/, '')}/generate_stream`, body, headers, signal);
    const pending: ProviderChunk[] = [];
    let failure: Error | undefined;
    let done = false;
    const parser = createParser({
      onEvent: (message: EventSourceMessage) => {
        if (failure || done) return;
        let json: unknown;
        try {
          json = JSON.parse(message.data);
        } catch (cause) {
          failure = new UpstreamProtocolError(`malformed SSE frame: ${message.data.slice(0, 200)}`, { cause });
          return;
        }
        const parsed = tgiEventSchema.safeParse(json);
        if (!parsed.success) {
          failure = new UpstreamProtocolError(`unexpected TGI event: ${message.data.slice(0, 200)}`);
          return;
        }
        const event = parsed.data;
        if ('error' in event) {
          failure = new UpstreamReportedError(event.error_type ? `${event.error_type}: ${event.error}` : event.error);
          return;
        }
        if (!event.token.special && event.token.text) pending.push({ type: 'text-delta', text: event.token.text });
        if (event.details) {
          if (event.details.generated_tokens !== undefined) pending.push({ type: 'usage', usage: { completionTokens: event.details.generated_tokens } });
          pending.push({ type: 'finish', reason: event.details.finish_reason === 'length' ? 'length' : 'stop', raw: event.details.finish_reason });
          done = true;
        }
      },
    });
    for await (const text of readText(stream, signal)) {
      parser.feed(text);
      yield* pending;
      pending.length = 0;
      if (failure) throw failure;
      if (done) return;
    }
    throw new UpstreamClosedError('TGI closed the stream before its final event');
  }
}
