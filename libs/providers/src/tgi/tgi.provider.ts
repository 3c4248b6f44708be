import { z } from 'zod';
import { UpstreamClosedError, UpstreamProtocolError, UpstreamReportedError, finalAfterOutput } from '../errors';
import { chatTranscript } from '../internal/content';
import { parseJsonFrame, postForStream, sseMessages } from '../internal/http';
import { StopTail } from '../internal/stop-tail';
import type { GenerationParams } from '@tokenwire/contracts';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider, type ProviderCapabilities, type ProviderChunk, type ProviderRequest, type StreamOptions } from '../provider';

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
  readonly capabilities: ProviderCapabilities = {
    streaming: true,
    tools: false,
    usage: true,
    images: 'none',
    params: { temperature: true, topP: true, maxTokens: true, stop: true, seed: true, frequencyPenalty: true },
  };
  private readonly options: z.output<typeof tgiOptionsSchema>;

  constructor(options: TgiOptions) {
    this.options = tgiOptionsSchema.parse(options);
  }

  async *stream(request: ProviderRequest, { signal, heartbeat }: StreamOptions): AsyncIterable<ProviderChunk> {
    const body = { inputs: chatTranscript(request.messages, this.options.prompt), parameters: tgiParameters(request.params) };
    const headers = { accept: 'text/event-stream', ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}) };
    const stream = await postForStream(`${this.options.baseUrl.replace(/\/+$/, '')}/generate_stream`, body, headers, signal);
    let sent = false;
    const tail = new StopTail(request.params.stop);
    try {
      for await (const message of sseMessages(stream, signal, heartbeat)) {
        const parsed = tgiEventSchema.safeParse(parseJsonFrame(message.data));
        if (!parsed.success) throw new UpstreamProtocolError(`unexpected TGI event: ${message.data.slice(0, 200)}`);
        const event = parsed.data;
        if ('error' in event) throw new UpstreamReportedError(event.error_type ? `${event.error_type}: ${event.error}` : event.error);
        if (!event.token.special && event.token.text) {
          sent = true;
          const text = tail.push(event.token.text);
          if (text) yield { type: 'text-delta', text };
        }
        if (event.details) {
          // TGI says `stop_sequence` but not which, and leaves the sequence in the text: its end tells, and is cut.
          const { text, matched: stopSequence } = tail.end(event.details.finish_reason === 'stop_sequence');
          if (text) yield { type: 'text-delta', text };
          if (event.details.generated_tokens !== undefined) yield { type: 'usage', usage: { completionTokens: event.details.generated_tokens } };
          yield { type: 'finish', reason: event.details.finish_reason === 'length' ? 'length' : 'stop', raw: event.details.finish_reason, ...(stopSequence !== undefined ? { stopSequence } : {}) };
          return;
        }
      }
      throw new UpstreamClosedError('TGI closed the stream before its final event');
    } catch (error) {
      // Text held back as a possible stop sequence was not one: the reply ends here, so it is passed on.
      const { text } = tail.end(false);
      if (text && !signal.aborted) yield { type: 'text-delta', text };
      throw finalAfterOutput(error, sent);
    }
  }
}

/**
 * TGI's `parameters`, valid as TGI checks them: temperature must be > 0 and top_p inside (0, 1).
 * Temperature 0 or top_p 0 (OpenAI's "always the likeliest token") is greedy decoding,
 * `do_sample: false`; top_p 1 (no nucleus cut) is left out. Any other temperature samples.
 */
export function tgiParameters(p: GenerationParams): Record<string, unknown> {
  const greedy = p.temperature === 0 || p.topP === 0;
  return {
    max_new_tokens: p.maxTokens,
    ...(greedy ? { do_sample: false } : {
      ...(p.temperature !== undefined ? { do_sample: true, temperature: p.temperature } : {}),
      ...(p.topP !== undefined && p.topP < 1 ? { top_p: p.topP } : {}),
    }),
    stop: p.stop,
    seed: p.seed,
    frequency_penalty: p.frequencyPenalty,
    details: true,
  };
}
