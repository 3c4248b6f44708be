import WebSocket from 'ws';
import { z } from 'zod';
import { UpstreamClosedError, UpstreamConnectError, finalAfterOutput } from '../errors';
import { refusedUpgrade } from '../internal/refused-upgrade';
import { PROVIDER_SPEC_VERSION, type LanguageModelProvider, type ProviderChunk, type ProviderRequest, type StreamOptions } from '../provider';
import { RESPONSES_CAPABILITIES, ResponsesEventMapper, responsesRequestBody } from './map-responses-event';

export const openAIResponsesWsOptionsSchema = z.object({
  url: z.string().regex(/^wss?:\/\//, 'must be a ws:// or wss:// URL').default('wss://api.openai.com/v1/responses'),
  apiKey: z.string().optional(),
  headers: z.record(z.string(), z.string()).default({}),
  /** Idle connections kept for the next jobs. */
  poolSize: z.number().int().min(0).default(4),
  /** A connection older than this is not reused (OpenAI closes them at 60 minutes). */
  maxConnectionAgeMs: z.number().int().positive().default(55 * 60_000),
  connectTimeoutMs: z.number().int().positive().default(10_000),
});
export type OpenAIResponsesWsOptions = z.input<typeof openAIResponsesWsOptionsSchema>;

interface PooledSocket {
  socket: WebSocket;
  openedAt: number;
}

/**
 * OpenAI's Responses API in WebSocket mode: `response.create` per job on a socket
 * reused across consecutive jobs. A connection is retired between jobs when it is
 * too old or broken; one that fails or is aborted mid-job is closed, never reused.
 */
export class OpenAIResponsesWsProvider implements LanguageModelProvider {
  readonly specVersion = PROVIDER_SPEC_VERSION;
  readonly id = 'openai-responses-ws';
  readonly capabilities = RESPONSES_CAPABILITIES;
  private readonly options: z.output<typeof openAIResponsesWsOptionsSchema>;
  private readonly idle: PooledSocket[] = [];
  /** Connections opened so far (for tests and logs). */
  connectionsOpened = 0;

  constructor(options: OpenAIResponsesWsOptions = {}) {
    this.options = openAIResponsesWsOptionsSchema.parse(options);
  }

  async *stream(request: ProviderRequest, { signal, log, heartbeat }: StreamOptions): AsyncIterable<ProviderChunk> {
    signal.throwIfAborted();
    const mapper = new ResponsesEventMapper(log);
    const pooled = await this.acquire(signal);
    const { socket } = pooled;
    const queue: string[] = [];
    let ended: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      wake?.();
      wake = undefined;
    };
    const onMessage = (data: WebSocket.RawData) => {
      heartbeat?.();
      queue.push(data.toString());
      notify();
    };
    const onClose = () => {
      ended ??= new UpstreamClosedError('the Responses WebSocket closed mid-response');
      notify();
    };
    const onError = (error: Error) => {
      ended ??= new UpstreamClosedError(`the Responses WebSocket failed: ${error.message}`);
      notify();
    };
    const onAbort = () => socket.terminate();
    socket.on('message', onMessage);
    socket.on('close', onClose);
    socket.on('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    let reusable = false;
    let sent = false;
    try {
      socket.send(JSON.stringify({ type: 'response.create', ...responsesRequestBody(request.model, request.messages, request.params) }));
      for (;;) {
        while (queue.length) {
          const { chunks, done } = mapper.map(queue.shift()!);
          sent ||= !done && chunks.length > 0;
          yield* chunks;
          if (done) {
            reusable = true;
            return;
          }
        }
        if (signal.aborted) throw signal.reason;
        if (ended) throw finalAfterOutput(ended, sent);
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      socket.off('message', onMessage);
      socket.off('close', onClose);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      this.release(pooled, reusable);
    }
  }

  /** An idle, open, young-enough connection, or a new one. */
  private async acquire(signal: AbortSignal): Promise<PooledSocket> {
    while (this.idle.length) {
      const pooled = this.idle.pop()!;
      if (pooled.socket.readyState === WebSocket.OPEN && Date.now() - pooled.openedAt < this.options.maxConnectionAgeMs) return pooled;
      pooled.socket.close(1000); // retired between jobs, never mid-job
    }
    const o = this.options;
    const socket = new WebSocket(o.url, {
      headers: { ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}), ...o.headers },
      handshakeTimeout: o.connectTimeoutMs,
    });
    this.connectionsOpened++;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        socket.terminate();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('open', () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
      socket.once('unexpected-response', (_req, response) => refusedUpgrade(response, o.url).then(reject, reject));
      socket.once('error', (error) => reject(new UpstreamConnectError(`cannot reach upstream ${o.url}: ${error.message}`, { cause: error })));
    });
    socket.on('error', () => undefined); // errors while idle just retire the socket at its next acquire
    return { socket, openedAt: Date.now() };
  }

  private release(pooled: PooledSocket, reusable: boolean): void {
    if (reusable && pooled.socket.readyState === WebSocket.OPEN && this.idle.length < this.options.poolSize) this.idle.push(pooled);
    else if (pooled.socket.readyState === WebSocket.OPEN) pooled.socket.close(1000);
    else pooled.socket.terminate();
  }
}
