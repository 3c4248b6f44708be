/**
 * Bench load generator, in its own process: opens C concurrent streams in one mode
 * and reports per stream the time to first token and each token's delivery latency
 * (arrival − the upstream's write time carried in the token text).
 */
import http from 'node:http';
import { io, type Socket } from 'socket.io-client';

export type Mode = 'direct' | 'openai' | 'socket' | 'fanout';
export interface LoadTask {
  mode: Mode;
  url: string;
  concurrency: number;
  model: string;
  /** Fan-out: how many sockets subscribe to the one generation. */
  subscribers?: number;
}
export interface StreamResult {
  ttftMs: number;
  latenciesMs: number[];
  tokens: number;
  ok: boolean;
}

const now = () => performance.timeOrigin + performance.now();
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const TOKEN = /(\d+\.\d+)\|/g;

function recordTokens(text: string, result: StreamResult, arrival: number): void {
  for (const match of text.matchAll(TOKEN)) {
    if (result.tokens++ === 0) result.ttftMs = arrival - result.ttftMs;
    result.latenciesMs.push(arrival - Number(match[1]));
  }
}

function httpStream(url: string, model: string, marker: string): Promise<StreamResult> {
  return new Promise((resolve) => {
    const result: StreamResult = { ttftMs: now(), latenciesMs: [], tokens: 0, ok: false };
    const request = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (response) => {
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => recordTokens(chunk, result, now()));
      response.on('end', () => resolve({ ...result, ok: response.statusCode === 200 && result.tokens > 0 }));
    });
    request.on('error', () => resolve(result));
    request.end(JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: marker }] }));
  });
}

async function connect(url: string): Promise<Socket> {
  const socket = io(`${url}/v1/stream`, { transports: ['websocket'], forceNew: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

async function socketStream(socket: Socket, model: string, marker: string): Promise<StreamResult> {
  const result: StreamResult = { ttftMs: now(), latenciesMs: [], tokens: 0, ok: false };
  let jobId = '';
  return new Promise((resolve) => {
    const onChunk = (event: { jobId: string; delta: string }) => event.jobId === jobId && recordTokens(event.delta, result, now());
    const onEnd = (event: { jobId: string; type: string }) => {
      if (event.jobId !== jobId) return;
      socket.off('chunk', onChunk);
      resolve({ ...result, ok: event.type === 'done' && result.tokens > 0 });
    };
    socket.on('chunk', onChunk);
    for (const type of ['done', 'error', 'cancelled']) socket.on(type, onEnd);
    socket.emit('generate', { model, messages: [{ role: 'user', content: marker }] }, (ack: { ok: boolean; jobId: string }) => {
      if (!ack.ok) resolve(result);
      jobId = ack.jobId;
    });
  });
}

/** One generation, `subscribers` sockets: each socket's per-token delivery latency. */
async function fanout(task: LoadTask): Promise<StreamResult[]> {
  const sockets = await Promise.all(Array.from({ length: task.subscribers ?? 1000 }, () => connect(task.url)));
  const response = await fetch(`${task.url}/v1/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: task.model, messages: [{ role: 'user', content: 'fanout' }] }),
  });
  const { id } = (await response.json()) as { id: string };
  const results = await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<StreamResult>((resolve) => {
          const result: StreamResult = { ttftMs: now(), latenciesMs: [], tokens: 0, ok: false };
          socket.on('chunk', (event: { delta: string }) => recordTokens(event.delta, result, now()));
          socket.on('done', () => resolve({ ...result, ok: true }));
          socket.emit('subscribe', { jobId: id, afterSeq: 0 }, () => undefined);
        }),
    ),
  );
  for (const socket of sockets) socket.close();
  return results;
}

async function run(task: LoadTask): Promise<StreamResult[]> {
  if (task.mode === 'fanout') return fanout(task);
  if (task.mode === 'socket') {
    // Sockets are connected before the clock starts: the measure is the stream, not the handshake.
    const sockets = await Promise.all(Array.from({ length: task.concurrency }, () => connect(task.url)));
    const results = await Promise.all(sockets.map((socket, i) => socketStream(socket, task.model, `s${i}`)));
    for (const socket of sockets) socket.close();
    return results;
  }
  const url = `${task.url}/v1/chat/completions`;
  return Promise.all(Array.from({ length: task.concurrency }, (_, i) => httpStream(url, task.model, `h${i}`)));
}

process.on('message', (task: LoadTask) => {
  const started = now();
  void run(task).then((results) => {
    process.send!({ results, wallMs: now() - started }, () => process.exit(0));
  });
});
