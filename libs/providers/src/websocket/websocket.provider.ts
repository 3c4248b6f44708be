import WebSocket from 'ws';
import { z } from 'zod';
import { UpstreamClosedError, UpstreamConnectError, UpstreamHttpError, UpstreamReportedError } from '../errors';
import { contentText } from '../internal/content';
import { parseJsonFrame } from '../internal/http';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider, type ProviderChunk, type ProviderRequest, type StreamOptions } from '../provider';
import { getPath, renderTemplate } from './json-path';

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
  readonly capabilities = { streaming: true, tools: false, usage: true } as const;
  private readonly options: z.output<typeof websocketOptionsSchema>;

  constructor(options: WebSocketProviderOptions) {
    this.options = websocketOptionsSchema.parse(options);
  }

  async *stream(request: ProviderRequest, { signal }: StreamOptions): AsyncIterable<ProviderChunk> {
    const o = this.options;
    const lastUser = [...request.messages].reverse().find((m) => m.role === 'user');
    const message = renderTemplate(o.requestTemplate, { model: request.model, messages: request.messages, prompt: contentText(lastUser?.content ?? ''), params: request.params });
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
      queue.push(data);
      notify();
    });
    socket.on('unexpected-response', (_req, response) => {
      ended = new UpstreamHttpError(response.statusCode ?? 502, `WebSocket upgrade refused by ${o.url}`);
      response.resume();
      socket.terminate();
      notify();
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

    try {
      for (;;) {
        while (queue.length) {
          const json = parseJsonFrame(queue.shift()!.toString(), 'WebSocket message');
          const error = getPath(json, o.errorPath);
          if (error) throw new UpstreamReportedError(typeof error === 'string' ? error : JSON.stringify(error));
          const token = getPath(json, o.tokenPath);
          if (typeof token === 'string' && token) yield { type: 'text-delta', text: token };
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
        if (ended) throw ended === 'closed' ? new UpstreamClosedError('the WebSocket closed before the done message') : ended;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (socket.readyState === WebSocket.OPEN) socket.close(1000);
      else if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
    }
  }
}
