import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { TokenwireConfigInput } from '@tokenwire/core';
import { DemoProvider, type DemoProviderOptions } from '@tokenwire/providers';
import { deletePrefix, testRedisUrl, uniquePrefix } from './redis';
import { spawnApp, writeConfigFile, type AppProcess } from './processes';
import { waitFor } from './wait';

/**
 * A prompt of `words` distinct words of `bytesPerWord` bytes (`w000001-xxxx…`). The demo model's
 * reply cycles through the prompt's words, so a model with `tokens: n` answers n tokens this long
 * (with `worker.coalesce: off`, n events) while the config and the request stay small.
 */
export function longPrompt(words: number, bytesPerWord: number): string {
  const filler = 'x'.repeat(Math.max(0, bytesPerWord - 8));
  return Array.from({ length: words }, (_, i) => `w${String(i + 1).padStart(6, '0')}-${filler}`).join(' ');
}

/** The reply the demo model with `options` gives to `prompt`. */
export function demoReply(options: DemoProviderOptions, prompt: string): string {
  return new DemoProvider(options).replyTokens([{ role: 'user', content: prompt }]).join('');
}

export interface SpawnedGateway {
  api: AppProcess;
  worker: AppProcess;
  url: string;
  prefix: string;
  close(): Promise<void>;
}

/** An api and a worker as real processes (so the api's memory can be measured alone), on a fresh prefix. */
export async function spawnGateway(config: TokenwireConfigInput): Promise<SpawnedGateway> {
  const prefix = uniquePrefix();
  const env = { REDIS_URL: testRedisUrl(), TOKENWIRE_REDIS_PREFIX: prefix, TOKENWIRE_CONFIG: writeConfigFile(config) };
  // A loaded machine (2 cores, many test processes) can take over 20 s to start both.
  const [api, worker] = await Promise.all([spawnApp('api', env, { readyTimeoutMs: 60_000 }), spawnApp('worker', env, { readyTimeoutMs: 60_000 })]);
  return {
    api,
    worker,
    url: api.url!,
    prefix,
    async close() {
      await Promise.all([api.stop(), worker.stop()]);
      await deletePrefix(prefix);
    },
  };
}

/** Resident memory of a process (Linux /proc), in bytes. */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** Samples a process's RSS every `intervalMs` until `stop()`; returns the peak. */
export function sampleRss(pid: number, intervalMs = 50): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid));
    },
  };
}

/** Starts a generation over HTTP and returns its id. */
export async function createGeneration(url: string, model: string, content = 'long'): Promise<string> {
  const response = await fetch(`${url}/v1/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  });
  if (response.status !== 202) throw new Error(`create answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

/** Waits until the generation has ended (its status, as GET /v1/generations/:id reports it). */
export async function waitForEnd(url: string, id: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `generation ${id} to end`,
    async () => {
      const view = (await (await fetch(`${url}/v1/generations/${id}`)).json()) as { status: string };
      return ['done', 'error', 'cancelled'].includes(view.status);
    },
    { timeoutMs, intervalMs: 200 },
  );
}

/**
 * An SSE reader over a raw HTTP connection that can stop reading (TCP backpressure reaches the api)
 * and read again. `events` fills as frames are parsed; `ended` resolves when the response ends or is cut.
 */
export class PausableSseReader {
  readonly events: EventSourceMessage[] = [];
  status = 0;
  receivedBytes = 0;
  readonly ended: Promise<'complete' | 'cut'>;
  private response?: http.IncomingMessage;
  private request!: http.ClientRequest;

  constructor(url: string, headers: Record<string, string> = {}) {
    const parser = createParser({ onEvent: (event) => this.events.push(event) });
    this.ended = new Promise((resolve, reject) => {
      this.request = http.get(url, { headers }, (response) => {
        this.response = response;
        this.status = response.statusCode ?? 0;
        response.setEncoding('utf8');
        response.on('data', (text: string) => {
          this.receivedBytes += Buffer.byteLength(text);
          parser.feed(text);
        });
        response.on('end', () => resolve(response.complete ? 'complete' : 'cut'));
        response.on('aborted', () => resolve('cut'));
        response.on('error', () => resolve('cut'));
      });
      this.request.on('error', reject);
    });
  }

  get lastId(): number {
    return Number(this.events.at(-1)?.id ?? 0);
  }

  /** Stops reading: the socket is paused, so the api's writes pile up in the kernel and then in the api. */
  pause(): void {
    this.response?.pause();
    this.response?.socket.pause();
  }

  resume(): void {
    this.response?.socket.resume();
    this.response?.resume();
  }

  close(): void {
    this.request.destroy();
  }
}

/** The TCP connection under a Socket.IO client (websocket transport): pause it to stop reading. */
export function socketConnection(socket: { io: unknown }): import('node:net').Socket {
  const engine = (socket.io as { engine: { transport: { ws?: { _socket?: import('node:net').Socket } } } }).engine;
  const tcp = engine.transport.ws?._socket;
  if (!tcp) throw new Error('the socket is not on the websocket transport');
  return tcp;
}
