/**
 * Bench load generator, in its own process (the orchestrator may fork several and
 * give each a share of the streams). Two phases: `prepare` (connect sockets, which
 * is not measured) answers `ready`; `start` runs the streams and answers `results`.
 *
 * Per stream it records:
 * - time to first token (request sent → first token parsed);
 * - per-token latency: arrival − the upstream's write time, which the fake upstream
 *   writes into every token as `<epoch ms>|`;
 * - inter-token gaps: arrival of token i − arrival of token i−1, as a client sees them.
 * Tokens are counted by content: every `<epoch ms>|` in the text a client receives is one token,
 * however the gateway grouped them into events (a coalesced delta of three tokens counts three).
 */
import http from 'node:http';
import OpenAI from 'openai';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

export type Mode = 'direct' | 'openai' | 'sdk' | 'socket' | 'portkey' | 'fanout' | 'cancel';
export interface LoadTask {
  mode: Mode;
  /** Base URL: the upstream (direct) or the api. */
  url: string;
  /** Concurrent streams of this process. */
  concurrency: number;
  /** Rounds run one after another (each round opens `concurrency` streams and waits for all). */
  rounds: number;
  /** Arrivals of a round: 0 opens every stream at once (a burst); n spreads the opens evenly over n ms. */
  spreadMs?: number;
  /** Extra request headers (the Portkey peer is told the upstream in headers). */
  headers?: Record<string, string>;
  model: string;
  /** Prefix of each stream's marker (its user message), unique across processes. */
  markerPrefix: string;
  /** Fan-out: the generation every socket subscribes to (created by the orchestrator). */
  jobId?: string;
  /** Cancel probes: the fake upstream's base URL, where closes are awaited. */
  upstreamUrl?: string;
  /** Cancel probes: delay before the first probe and between probes. */
  cancelStartMs?: number;
  cancelEveryMs?: number;
}
export interface StreamResult {
  ttftMs: number;
  latenciesMs: number[];
  gapsMs: number[];
  tokens: number;
  ok: boolean;
  /** Cancel probes: DELETE sent → upstream saw its socket close (ms, across two processes' clocks). */
  cancelMs?: number;
  /** Fan-out: when the subscribe was acknowledged (epoch ms). */
  subscribedAt?: number;
}
export interface LoadReply {
  results: StreamResult[];
  startedAt: number;
  endedAt: number;
  cpuSeconds: number;
  maxRssMb: number;
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const TOKEN = /(\d+\.\d+)\|/g;

class Recorder {
  readonly result: StreamResult = { ttftMs: NaN, latenciesMs: [], gapsMs: [], tokens: 0, ok: false };
  private readonly sentAt = now();
  private lastAt = 0;

  /** Every token in `text` arrived at `arrival`. */
  record(text: string, arrival: number): void {
    const r = this.result;
    for (const match of text.matchAll(TOKEN)) {
      if (r.tokens++ === 0) r.ttftMs = arrival - this.sentAt;
      else r.gapsMs.push(arrival - this.lastAt);
      this.lastAt = arrival;
      r.latenciesMs.push(arrival - Number(match[1]));
    }
  }
}

function post(url: string, body: unknown, onData?: (chunk: string) => void, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const request = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } }, (response) => {
      response.setEncoding('utf8');
      let text = '';
      response.on('data', (chunk: string) => (onData ? onData(chunk) : (text += chunk)));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      response.on('error', () => resolve({ status: 0, text }));
    });
    request.on('error', () => resolve({ status: 0, text: '' }));
    request.end(JSON.stringify(body));
  });
}

function get(url: string, method = 'GET'): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const request = http.request(url, { method, agent }, (response) => {
      response.setEncoding('utf8');
      let text = '';
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.on('error', () => resolve({ status: 0, text: '' }));
    request.end();
  });
}

/** The Accept-Encoding the `openai` SDK (Node's fetch) sends: a gateway that compresses by default pays for it here. */
const SDK_ACCEPT_ENCODING = 'gzip, deflate';

/** One OpenAI-style streaming request (straight at the upstream, through the api's chat route, or through the peer). */
async function httpStream(task: LoadTask, marker: string): Promise<StreamResult> {
  const recorder = new Recorder();
  const body = { model: task.model, stream: true, messages: [{ role: 'user', content: marker }] };
  const { status } = await post(`${task.url}/v1/chat/completions`, body, (chunk) => recorder.record(chunk, now()), { 'accept-encoding': SDK_ACCEPT_ENCODING, ...task.headers });
  recorder.result.ok = status === 200 && recorder.result.tokens > 0;
  return recorder.result;
}

let sdk: OpenAI | undefined;

/** The same request through the official `openai` SDK (its fetch, SSE parser and chunk objects), as most clients send it. */
async function sdkStream(task: LoadTask, marker: string): Promise<StreamResult> {
  sdk ??= new OpenAI({ baseURL: `${task.url}/v1`, apiKey: 'bench', maxRetries: 0, timeout: 600_000 });
  const recorder = new Recorder();
  try {
    const stream = await sdk.chat.completions.create({ model: task.model, stream: true, messages: [{ role: 'user', content: marker }] });
    let finished = false;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta?.content) recorder.record(choice.delta.content, now());
      if (choice?.finish_reason) finished = true;
    }
    recorder.result.ok = finished && recorder.result.tokens > 0;
  } catch {
    recorder.result.ok = false;
  }
  return recorder.result;
}

async function connect(url: string): Promise<Socket> {
  const socket = io(`${url}/v1/stream`, { transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

async function connectAll(url: string, count: number): Promise<Socket[]> {
  // In batches: 1,000 simultaneous handshakes would only measure the accept queue.
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i += 100) sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => connect(url)))));
  return sockets;
}

function socketStream(socket: Socket, model: string, marker: string): Promise<StreamResult> {
  const recorder = new Recorder();
  let jobId = '';
  return new Promise((resolve) => {
    const onChunk = (event: { jobId: string; delta: string }) => {
      if (event.jobId === jobId) recorder.record(event.delta, now());
    };
    const onEnd = (event: { jobId: string; type: string }) => {
      if (event.jobId !== jobId) return;
      socket.off('chunk', onChunk);
      for (const type of ['done', 'error', 'cancelled']) socket.off(type, onEnd);
      recorder.result.ok = event.type === 'done' && recorder.result.tokens > 0;
      resolve(recorder.result);
    };
    socket.on('chunk', onChunk);
    for (const type of ['done', 'error', 'cancelled']) socket.on(type, onEnd);
    socket.emit('generate', { model, messages: [{ role: 'user', content: marker }] }, (ack: { ok: boolean; jobId: string }) => {
      if (!ack.ok) resolve(recorder.result);
      jobId = ack.jobId;
    });
  });
}

/**
 * A Socket.IO client reduced to the wire protocol (Engine.IO 4 over a WebSocket, one namespace),
 * for the fan-out: 1,000 sockets × 50 tokens/s is 50,000 packets/s, which socket.io-client decodes
 * at about 25 µs each, about as much CPU as the api spends sending them (bench/README.md, "What was changed").
 * It reads token timestamps straight from each frame's text and decodes only acks.
 */
class WireSocket {
  private readonly prefix: string;
  private nextAck = 0;
  private readonly acks = new Map<number, (payload: unknown) => void>();
  /** Called with each event frame's name and its whole text. */
  onEvent: (name: string, frame: string) => void = () => undefined;

  private constructor(
    private readonly ws: WebSocket,
    namespace: string,
  ) {
    this.prefix = `4${namespace},`;
  }

  static connect(url: string, namespace: string): Promise<WireSocket> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
    const socket = new WireSocket(ws, namespace);
    return new Promise((resolve, reject) => {
      ws.on('error', reject);
      ws.on('message', (data: Buffer) => {
        const frame = data.toString();
        if (frame === '2') ws.send('3'); // Engine.IO ping → pong
        else if (frame.startsWith('0')) ws.send(`40${namespace},`); // Engine.IO open → Socket.IO CONNECT
        else if (frame.startsWith(`40${namespace},`)) resolve(socket);
        else if (frame.startsWith(`44${namespace},`)) reject(new Error(`connect refused: ${frame}`));
        else socket.receive(frame);
      });
    });
  }

  emit(name: string, payload: unknown, ack: (reply: unknown) => void): void {
    const id = this.nextAck++;
    this.acks.set(id, ack);
    this.ws.send(`${this.prefix.replace(/^4/, '42')}${id}${JSON.stringify([name, payload])}`);
  }

  close(): void {
    this.ws.close();
  }

  private receive(frame: string): void {
    // "42<nsp>,[name,…]": an event; "43<nsp>,<id>[…]": an ack.
    const body = frame.slice(this.prefix.length + 1);
    if (frame[1] === '2') this.onEvent(body.slice(2, body.indexOf('"', 2)), frame);
    else if (frame[1] === '3') {
      const bracket = body.indexOf('[');
      const id = Number(body.slice(0, bracket));
      this.acks.get(id)?.((JSON.parse(body.slice(bracket)) as unknown[])[0]);
      this.acks.delete(id);
    }
  }
}

/** Each socket subscribes to the one generation; delivery latency per token per socket. */
function fanoutStream(socket: WireSocket, jobId: string): Promise<StreamResult> {
  const recorder = new Recorder();
  return new Promise((resolve) => {
    socket.onEvent = (name, frame) => {
      const arrival = now();
      if (name === 'chunk') recorder.record(frame, arrival);
      else if (name === 'done' || name === 'error' || name === 'cancelled') {
        recorder.result.ok = name === 'done';
        resolve(recorder.result);
      }
    };
    socket.emit('subscribe', { jobId, afterSeq: 0 }, (ack) => {
      recorder.result.subscribedAt = now();
      if (!(ack as { ok: boolean }).ok) resolve(recorder.result);
    });
  });
}

/**
 * One cancel probe: create a generation on the job route, wait for its first token on
 * the events stream, DELETE it, and take the time the upstream saw its socket close.
 */
async function cancelProbe(task: LoadTask, marker: string): Promise<StreamResult> {
  const result: StreamResult = { ttftMs: NaN, latenciesMs: [], gapsMs: [], tokens: 0, ok: false };
  const created = await post(`${task.url}/v1/generations`, { model: task.model, messages: [{ role: 'user', content: marker }] });
  if (created.status !== 202) return result;
  const { id } = JSON.parse(created.text) as { id: string };
  const closed = get(`${task.upstreamUrl}/closes/${encodeURIComponent(marker)}`);
  await new Promise<void>((resolve) => {
    const request = http.get(`${task.url}/v1/generations/${id}/events`, { agent }, (response) => {
      response.setEncoding('utf8');
      let seen = false;
      response.on('data', (chunk: string) => {
        if (!seen && chunk.includes('event: chunk')) {
          seen = true;
          resolve();
        }
      });
      response.on('end', resolve);
    });
    request.on('error', () => resolve());
  });
  const sentAt = now();
  const deleted = await get(`${task.url}/v1/generations/${id}`, 'DELETE');
  const { text } = await closed;
  const closedAt = Number(text);
  if (deleted.status < 300 && Number.isFinite(closedAt) && closedAt > 0) {
    result.cancelMs = closedAt - sentAt;
    result.ok = true;
  }
  return result;
}

let sockets: Socket[] = [];
let wireSockets: WireSocket[] = [];

async function prepare(task: LoadTask): Promise<void> {
  if (task.mode === 'socket') sockets = await connectAll(task.url, task.concurrency);
  if (task.mode === 'fanout') {
    // In batches, as connectAll does.
    for (let i = 0; i < task.concurrency; i += 100) {
      const batch = Array.from({ length: Math.min(100, task.concurrency - i) }, () => WireSocket.connect(task.url, '/v1/stream'));
      wireSockets.push(...(await Promise.all(batch)));
    }
  }
}

async function run(task: LoadTask): Promise<StreamResult[]> {
  const results: StreamResult[] = [];
  if (task.mode === 'fanout') return Promise.all(wireSockets.map((socket) => fanoutStream(socket, task.jobId!)));
  if (task.mode === 'cancel') {
    await sleep(task.cancelStartMs ?? 0);
    const probes: Array<Promise<StreamResult>> = [];
    for (let i = 0; i < task.rounds; i++) {
      // A long stream (30 s at 20 ms/token): under a backlogged gateway the first token reaches the client
      // seconds late, and the cancel must still find the upstream call open.
      probes.push(cancelProbe(task, `${task.markerPrefix}-${i} tokens=1500`));
      await sleep(task.cancelEveryMs ?? 100);
    }
    return Promise.all(probes);
  }
  const interval = (task.spreadMs ?? 0) / task.concurrency;
  // Stream i of a round opens at i × interval: with a spread, arrivals are even, as from many independent clients.
  const at = <T>(i: number, open: () => Promise<T>): Promise<T> => (interval ? sleep(i * interval).then(open) : open());
  for (let round = 0; round < task.rounds; round++) {
    const marker = (i: number) => `${task.markerPrefix}-${round}-${i}`;
    const batch =
      task.mode === 'socket'
        ? sockets.map((socket, i) => at(i, () => socketStream(socket, task.model, marker(i))))
        : Array.from({ length: task.concurrency }, (_, i) => at(i, () => (task.mode === 'sdk' ? sdkStream : httpStream)(task, marker(i))));
    results.push(...(await Promise.all(batch)));
  }
  return results;
}

if (process.send) {
  let task: LoadTask;
  process.on('message', (message: { type: 'prepare'; task: LoadTask } | { type: 'start'; jobId?: string }) => {
    if (message.type === 'prepare') {
      task = message.task;
      void prepare(task).then(
        () => process.send!({ type: 'ready' }),
        (error: unknown) => process.send!({ type: 'failed', error: String(error) }),
      );
      return;
    }
    if (message.jobId) task.jobId = message.jobId;
    const cpuAtStart = process.cpuUsage();
    const startedAt = now();
    void run(task).then((results) => {
      const endedAt = now();
      for (const socket of [...sockets, ...wireSockets]) socket.close();
      const cpu = process.cpuUsage(cpuAtStart); // the run only, not start-up or socket connects
      const reply: LoadReply = {
        results,
        startedAt,
        endedAt,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      };
      process.send!({ type: 'results', reply }, () => process.exit(0));
    });
  });
}
