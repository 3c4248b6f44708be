import WebSocket from 'ws';
import { z } from 'zod';
import { UpstreamClosedError, UpstreamConnectError, UpstreamReportedError, finalAfterOutput } from '../errors';
import { refusedUpgrade } from '../internal/refused-upgrade';
import { contentText } from '../internal/content';
import { parseJsonFrame } from '../internal/http';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider, type ProviderCapabilities, type ProviderChunk, type ProviderRequest, type SamplingParam, type StreamOptions } from '../provider';
import { getPath, renderTemplate } from './json-path';

const SAMPLING_PARAMS: readonly SamplingParam[] = ['temperature', 'topP', 'maxTokens', 'stop', 'presencePenalty', 'frequencyPenalty', 'seed'];

/** The sampling parameters a request template sends: `{{params.X}}` names X, `{{params}}` all of them. */
function templateParams(template: unknown): ProviderCapabilities['params'] {
  const text = JSON.stringify(template) ?? '';
  if (/\{\{\s*params\s*\}\}/.test(text)) return Object.fromEntries(SAMPLING_PARAMS.map((name) => [name, true]));
  const named = [...text.matchAll(/\{\{\s*params\.(\w+)\s*\}\}/g)].map((m) => m[1]!);
  return Object.fromEntries(SAMPLING_PARAMS.filter((name) => named.includes(name)).map((name) => [name, true]));
}

export const websocketOptionsSchema = z.object({
  /** ws:// or wss:// URL of the inference server. */
  url: z.string().regex(/^wss?:\/\//, 'must be a ws:// or wss:// URL'),
  headers: z.record(z.string(), z.string()).default({}),
  /**
   * The message sent after connecting. `{{model}}`, `{{messages}}`, `{{prompt}}` (the last user
   * message's text) and `{{params.maxTokens}}` (any GenerationParams field) are filled in.
   */
  requestTemplate: z.unknown().default({ model: '{{model}}', messages: '{{messages}}', max_tokens: '{{params.maxTokens}}', temperature: '{{params.temperature}}' }),
  /** Dotted paths into each JSON message the server sends. */
  tokenPath: z.string().default('token'),
  donePath: z.string().default('done'),
  errorPath: z.string().default('error'),
  promptTokensPath: z.string().optional(),
  completionTokensPath: z.string().optional(),
  /** permessage-deflate (if the server agrees). */
  perMessageDeflate: z.boolean().default(false),
  /** How long to wait for the connection. */
  connectTimeoutMs: z.number().int().positive().default(10_000),
});
export type WebSocketProviderOptions = z.input<typeof websocketOptionsSchema>;

/** A WebSocket inference server that answers one JSON request with JSON messages `{token}` … `{done: true}`. */
export class WebSocketProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'websocket';
  readonly capabilities: ProviderCapabilities;
  private readonly options: z.output<typeof websocketOptionsSchema>;

  constructor(options: WebSocketProviderOptions) {
    this.options = websocketOptionsSchema.parse(options);
    // The template decides what reaches the server: a parameter it does not send is refused, not dropped.
    this.capabilities = { streaming: true, tools: false, usage: true, images: 'none', params: templateParams(this.options.requestTemplate) };
  }

  async *stream(request: ProviderRequest, { signal, heartbeat }: StreamOptions): AsyncIterable<ProviderChunk> {
    const o = this.options;
    const lastUser = [...request.messages].reverse().find((m) => m.role === 'user');
    // Text-only: content parts reach the server as one string (parts joined with a newline).
    const messages = request.messages.map((m) => ({ ...m, content: contentText(m.content) }));
    const message = renderTemplate(o.requestTemplate, { model: request.model, messages, prompt: contentText(lastUser?.content ?? ''), params: request.params });
    signal.throwIfAborted();
    let opened = false;
    const socket = new WebSocket(o.url, { headers: o.headers, perMessageDeflate: o.perMessageDeflate, handshakeTimeout: o.connectTimeoutMs });

    // Messages and the end are queued by listeners and consumed by this generator.
    const queue: Array<WebSocket.RawData> = [];
    let ended: Error | 'closed' | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      wake?.();
      wake = undefined;
    };
    const onAbort = () => socket.terminate(); // closes the TCP connection now, no closing handshake
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('message', (data) => {
      heartbeat?.();
      queue.push(data);
      notify();
    });
    if (heartbeat) socket.on('ping', heartbeat); // a server's WebSocket ping is life too
    socket.on('unexpected-response', (_req, response) => {
      const end = (error: Error) => {
        ended = error;
        socket.terminate();
        notify();
      };
      refusedUpgrade(response, o.url).then(end, end);
    });
    socket.on('error', (error) => {
      ended ??= socket.readyState === WebSocket.CONNECTING || !opened ? new UpstreamConnectError(`cannot reach upstream ${o.url}: ${error.message}`, { cause: error }) : new UpstreamClosedError(`WebSocket failed: ${error.message}`);
      notify();
    });
    socket.on('close', () => {
      ended ??= 'closed';
      notify();
    });
    socket.once('open', () => {
      opened = true;
      socket.send(JSON.stringify(message));
    });

    let sent = false;
    try {
      for (;;) {
        while (queue.length) {
          const json = parseJsonFrame(queue.shift()!.toString(), 'WebSocket message');
          const error = getPath(json, o.errorPath);
          if (error) throw new UpstreamReportedError(typeof error === 'string' ? error : JSON.stringify(error));
          const token = getPath(json, o.tokenPath);
          if (typeof token === 'string' && token) {
            sent = true;
            yield { type: 'text-delta', text: token };
          }
          if (getPath(json, o.donePath)) {
            const promptTokens = o.promptTokensPath ? getPath(json, o.promptTokensPath) : undefined;
            const completionTokens = o.completionTokensPath ? getPath(json, o.completionTokensPath) : undefined;
            if (typeof promptTokens === 'number' || typeof completionTokens === 'number') {
              yield { type: 'usage', usage: { promptTokens: promptTokens as number | undefined, completionTokens: completionTokens as number | undefined } };
            }
            yield { type: 'finish', reason: 'stop' };
            return;
          }
        }
        if (signal.aborted) throw signal.reason;
        if (ended) throw ended === 'closed' ? new UpstreamClosedError('the WebSocket closed before the done message', { afterOutput: sent }) : finalAfterOutput(ended, sent);
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (socket.readyState === WebSocket.OPEN) socket.close(1000);
      else if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
    }
  }
}
