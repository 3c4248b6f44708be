import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** What the fake upstream does for one request. */
export interface FakeOpenAIScript {
  tokens?: string[];
  /** Pause before each token. */
  tokenDelayMs?: number;
  /** Pause before the first byte of the body. */
  firstByteDelayMs?: number;
  /** Answer with this HTTP status and body instead of a stream. */
  status?: number;
  errorBody?: string;
  retryAfter?: string;
  /** Send a final usage chunk (when the client asked for it). */
  usage?: { prompt_tokens: number; completion_tokens: number };
  /** Split every SSE frame into single-byte TCP writes. */
  splitWrites?: boolean;
  /** Drop the connection after this many tokens (no finish, no [DONE]). */
  dropAfter?: number;
  /** Send an unparseable frame after this many tokens. */
  malformedAfter?: number;
  /** Send tool-call deltas instead of text. */
  toolCall?: { id: string; name: string; argumentChunks: string[] };
}

export interface FakeUpstreamRequest {
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
  /** Resolves when the client closed the connection before the stream ended. */
  closedEarly: Promise<number>;
  startedAt: number;
  /** When the response closed (performance.now()); undefined while it runs. */
  endedAt?: number;
}

/**
 * A real HTTP server speaking OpenAI's chat-completions SSE over TCP, for
 * provider and end-to-end tests. `script` decides each request's behaviour.
 */
export class FakeOpenAIServer {
  readonly requests: FakeUpstreamRequest[] = [];
  /** Requests open right now, and the most ever open at once. */
  active = 0;
  peakActive = 0;
  private server = http.createServer((req, res) => void this.handle(req, res));
  private sockets = new Set<Socket>();
  script: (body: Record<string, unknown>, index: number) => FakeOpenAIScript = () => ({ tokens: ['Hello', ',', ' world'] });
  /** What `GET /health` answers (the health probe of a fleet's replica). */
  healthStatus = 200;
  /** What `GET /metrics` answers (Prometheus text, as vLLM serves it); undefined: 404. */
  metricsText?: string;

  /** Listens on `host` (any 127.x.y.z address is loopback on Linux), on `port` (0: any free one). */
  async start(host = '127.0.0.1', port = 0): Promise<string> {
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, resolve);
    });
    return this.baseUrl;
  }

  get baseUrl(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address}:${port}/v1`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    if (req.url === '/health' && req.method === 'GET') {
      res.writeHead(this.healthStatus).end();
      return;
    }
    if (req.url === '/metrics' && req.method === 'GET') {
      if (this.metricsText === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metricsText);
      return;
    }
    if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
      res.writeHead(404).end('not found');
      return;
    }
    const body = JSON.parse(raw) as Record<string, unknown>;
    this.peakActive = Math.max(this.peakActive, ++this.active);
    res.on('close', () => this.active--);
    const script = this.script(body, this.requests.length);
    let finished = false;
    const startedAt = performance.now();
    const closedEarly = new Promise<number>((resolve) => res.on('close', () => !finished && resolve(performance.now())));
    closedEarly.catch(() => undefined);
    const entry: FakeUpstreamRequest = { body, headers: req.headers, closedEarly, startedAt };
    res.on('close', () => (entry.endedAt = performance.now()));
    this.requests.push(entry);

    if (script.status && script.status >= 400) {
      res.writeHead(script.status, { 'content-type': 'application/json', ...(script.retryAfter ? { 'retry-after': script.retryAfter } : {}) });
      res.end(script.errorBody ?? JSON.stringify({ error: { message: `fake upstream failure ${script.status}`, type: 'server_error' } }));
      finished = true;
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const write = async (frame: string) => {
      if (res.destroyed) return;
      if (!script.splitWrites) {
        res.write(frame);
        return;
      }
      for (const char of Buffer.from(frame)) {
        res.write(Buffer.from([char]));
        await sleep(0);
      }
    };
    const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model: String(body.model) };
    const data = (payload: unknown) => write(`data: ${JSON.stringify(payload)}\n\n`);
    if (script.firstByteDelayMs) await sleep(script.firstByteDelayMs);
    if (res.destroyed) return;
    await data({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    const tokens = script.tokens ?? [];
    for (let i = 0; i < tokens.length; i++) {
      if (script.dropAfter === i) {
        // Let the tokens already sent be read first: erroring a stream discards what is still queued.
        await sleep(50);
        res.socket?.destroy();
        return;
      }
      if (script.malformedAfter === i) await write('data: {"choices": [ this is not json\n\n');
      if (script.tokenDelayMs) await sleep(script.tokenDelayMs);
      if (res.destroyed) return;
      await data({ ...base, choices: [{ index: 0, delta: { content: tokens[i] }, finish_reason: null }] });
    }
    if (script.toolCall) {
      const { id, name, argumentChunks } = script.toolCall;
      await data({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: '' } }] }, finish_reason: null }] });
      for (const args of argumentChunks) await data({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: args } }] }, finish_reason: null }] });
    }
    await data({ ...base, choices: [{ index: 0, delta: {}, finish_reason: script.toolCall ? 'tool_calls' : 'stop' }] });
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
    if (script.usage && includeUsage) await data({ ...base, choices: [], usage: { ...script.usage, total_tokens: script.usage.prompt_tokens + script.usage.completion_tokens } });
    await write('data: [DONE]\n\n');
    finished = true;
    res.end();
  }
}
