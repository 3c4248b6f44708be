import { z } from 'zod';
import { UpstreamClosedError, UpstreamProtocolError, UpstreamReportedError, finalAfterOutput } from '../errors';
import { randomUUID } from 'node:crypto';
import { lines, parseJsonFrame, postForStream, readText } from '../internal/http';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider, type ProviderCapabilities, type ProviderChunk, type ProviderRequest, type StreamOptions } from '../provider';
import { ollamaChatLineSchema, ollamaTagsSchema } from './ollama-api';
import { mapOllamaRequest } from './map-ollama-request';

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
  readonly capabilities: ProviderCapabilities = {
    streaming: true,
    tools: true,
    forcedToolChoice: false,
    usage: true,
    images: 'data-url',
    params: { temperature: true, topP: true, maxTokens: true, stop: true, presencePenalty: true, frequencyPenalty: true, seed: true },
  };
  private readonly options: z.output<typeof ollamaOptionsSchema>;

  constructor(options: OllamaOptions = {}) {
    this.options = ollamaOptionsSchema.parse(options);
  }

  async *stream(request: ProviderRequest, { signal, heartbeat }: StreamOptions): AsyncIterable<ProviderChunk> {
    const body = mapOllamaRequest(request, this.options.keepAlive);
    const stream = await postForStream(`${this.options.baseUrl.replace(/\/+$/, '')}/api/chat`, body, {}, signal);
    let toolCalls = 0;
    let sent = false;
    try {
      for await (const line of lines(readText(stream, signal, heartbeat))) {
        const parsed = ollamaChatLineSchema.safeParse(parseJsonFrame(line, 'NDJSON line'));
        if (!parsed.success) throw new UpstreamProtocolError(`unexpected line: ${line.slice(0, 200)}`);
        const data = parsed.data;
        if ('error' in data) throw new UpstreamReportedError(data.error);
        if (data.message?.content) {
          sent = true;
          yield { type: 'text-delta', text: data.message.content };
        }
        // Ollama sends each call whole, arguments as an object; the OpenAI side wants a JSON string and an id.
        for (const call of data.message?.tool_calls ?? []) {
          const args = call.function.arguments;
          sent = true;
          yield {
            type: 'tool-call-delta',
            index: toolCalls++,
            id: call.id ?? `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`,
            name: call.function.name,
            arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}),
          };
        }
        if (data.done) {
          yield { type: 'usage', usage: { promptTokens: data.prompt_eval_count, completionTokens: data.eval_count } };
          // Ollama says "stop" after tool calls; the caller needs to know it should run them.
          const reason = data.done_reason === 'length' ? 'length' : toolCalls ? 'tool_calls' : 'stop';
          yield { type: 'finish', reason, raw: data.done_reason };
          return;
        }
      }
      throw new UpstreamClosedError('Ollama closed the stream before its done line');
    } catch (error) {
      throw finalAfterOutput(error, sent);
    }
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
