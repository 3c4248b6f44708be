import { z } from 'zod';
import { UpstreamClosedError, UpstreamProtocolError, UpstreamReportedError } from '../errors';
import { contentText } from '../internal/content';
import { lines, parseJsonFrame, postForStream, readText } from '../internal/http';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider, type ProviderChunk, type ProviderRequest, type StreamOptions } from '../provider';
import { ollamaChatLineSchema, ollamaTagsSchema } from './ollama-api';

export const ollamaOptionsSchema = z.object({
  /** Ollama's root URL (no `/api`). */
  baseUrl: z.url().default('http://127.0.0.1:11434'),
  /** Ollama's `keep_alive` (how long the model stays loaded), e.g. `5m`. */
  keepAlive: z.string().optional(),
});
export type OllamaOptions = z.input<typeof ollamaOptionsSchema>;

/** Ollama's native `POST /api/chat` NDJSON stream. */
export class OllamaProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'ollama';
  readonly capabilities = { streaming: true, tools: false, usage: true } as const;
  private readonly options: z.output<typeof ollamaOptionsSchema>;

  constructor(options: OllamaOptions = {}) {
    this.options = ollamaOptionsSchema.parse(options);
  }

  async *stream(request: ProviderRequest, { signal }: StreamOptions): AsyncIterable<ProviderChunk> {
    const p = request.params;
    const body = {
      model: request.model,
      stream: true,
      messages: request.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: contentText(m.content) })),
      options: { temperature: p.temperature, top_p: p.topP, num_predict: p.maxTokens, stop: p.stop, seed: p.seed },
      ...(this.options.keepAlive ? { keep_alive: this.options.keepAlive } : {}),
    };
    const stream = await postForStream(`${this.options.baseUrl.replace(/\/+$/, '')}/api/chat`, body, {}, signal);
    for await (const line of lines(readText(stream, signal))) {
      const parsed = ollamaChatLineSchema.safeParse(parseJsonFrame(line, 'NDJSON line'));
      if (!parsed.success) throw new UpstreamProtocolError(`unexpected line: ${line.slice(0, 200)}`);
      const data = parsed.data;
      if ('error' in data) throw new UpstreamReportedError(data.error);
      if (data.message?.content) yield { type: 'text-delta', text: data.message.content };
      if (data.done) {
        yield { type: 'usage', usage: { promptTokens: data.prompt_eval_count, completionTokens: data.eval_count } };
        yield { type: 'finish', reason: data.done_reason === 'length' ? 'length' : 'stop', raw: data.done_reason };
        return;
      }
    }
    throw new UpstreamClosedError('Ollama closed the stream before its done line');
  }
}


/**
 * Models each Ollama server reports at `GET /api/tags`, as model configs.
 * An unreachable server contributes nothing (and is reported in `unreachable`).
 */
export async function discoverOllamaModels(
  baseUrls: string[],
  { timeoutMs = 1000 }: { timeoutMs?: number } = {},
): Promise<{ models: Array<{ name: string; provider: 'ollama'; options: { baseUrl: string } }>; unreachable: string[] }> {
  const models: Array<{ name: string; provider: 'ollama'; options: { baseUrl: string } }> = [];
  const unreachable: string[] = [];
  for (const baseUrl of baseUrls) {
    try {
      const response = await fetch(`${baseUrl.replace(/\/+$/, '')}/api/tags`, { signal: AbortSignal.timeout(timeoutMs) });
      const tags = ollamaTagsSchema.parse(await response.json());
      for (const { name } of tags.models) models.push({ name, provider: 'ollama', options: { baseUrl } });
    } catch {
      unreachable.push(baseUrl);
    }
  }
  return { models, unreachable };
}

/** Whether an Ollama server answers (`GET /api/version`) within `timeoutMs`. */
export async function checkOllamaHealth(baseUrl: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const response = await fetch(`${baseUrl.replace(/\/+$/, '')}/api/version`, { signal: AbortSignal.timeout(timeoutMs) });
    return response.ok;
  } catch {
    return false;
  }
}
