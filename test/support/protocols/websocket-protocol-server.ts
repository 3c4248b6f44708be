import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { CloseTracker, sleep, type ProtocolScript, type ProtocolServer, type ReceivedRequest } from './protocol-server';

/** A WebSocket inference server: one JSON request in, `{token}` messages out, then `{done: true, usage}`. */
export class WebSocketProtocolServer implements ProtocolServer {
  readonly providerType = 'websocket';
  readonly transport = 'websocket' as const;
  readonly keepAliveForm = 'a WebSocket ping frame';
  script: ProtocolScript = { tokens: ['Hello', ',', ' world'] };
  requests = 0;
  /** The last request message received. */
  lastRequest: unknown;
  private readonly closes = new CloseTracker();
  private server?: WebSocketServer;

  constructor(private readonly perMessageDeflate = false) {}

  providerOptions() {
    return {
      url: `ws://127.0.0.1:${(this.server!.address() as AddressInfo).port}/generate`,
      promptTokensPath: 'usage.prompt_tokens',
      completionTokensPath: 'usage.completion_tokens',
      perMessageDeflate: this.perMessageDeflate,
    };
  }

  received(): ReceivedRequest {
    const r = (this.lastRequest ?? {}) as { max_tokens?: number; temperature?: number; messages?: Array<{ role: string; content: string }> };
    const user = r.messages?.filter((m) => m.role === 'user').at(-1);
    return { tools: [], params: { temperature: r.temperature, maxTokens: r.max_tokens }, userTexts: user ? [user.content] : [], userImages: [] };
  }

  upstreamCodeFor(): undefined {
    return undefined; // a refused upgrade has a status, no code
  }

  lastEarlyClose(): Promise<number> {
    return this.closes.lastEarlyClose();
  }

  async start(): Promise<void> {
    this.server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      perMessageDeflate: this.perMessageDeflate,
      // A refusal is the upgrade answered with an HTTP status.
      verifyClient: (_info, done) => (this.script.refuse ? done(false, this.script.refuse.status, this.script.refuse.message) : done(true)),
    });
    await new Promise<void>((resolve) => this.server!.once('listening', () => resolve()));
    this.server.on('connection', (socket) => socket.once('message', (data) => void this.answer(socket, JSON.parse(data.toString()))));
  }

  async stop(): Promise<void> {
    for (const client of this.server?.clients ?? []) client.terminate();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private async answer(socket: WebSocket, request: unknown): Promise<void> {
    this.requests++;
    this.lastRequest = request;
    const tracking = this.closes.opened();
    socket.on('close', tracking.closed);
    const script = this.script;
    if (script.silent) return;
    if (script.keepAlive) {
      for (const until = performance.now() + script.keepAlive.forMs; performance.now() < until; ) {
        socket.ping();
        await sleep(script.keepAlive.everyMs);
        if (socket.readyState !== socket.OPEN) return;
      }
    }
    for (let i = 0; i < script.tokens.length; i++) {
      if (script.errorAfter === i) {
        socket.send(JSON.stringify({ error: 'inference failed' }));
        return;
      }
      if (script.malformedAfter === i) {
        socket.send('this is { not json');
        return;
      }
      if (script.dropAfter === i) {
        await sleep(50);
        socket.terminate();
        return;
      }
      // Neither token, done nor error: a message kind this client does not know.
      if (script.unknownEventAfter === i) socket.send(JSON.stringify({ meta: { queue_position: 0, future: true } }));
      if (script.tokenDelayMs) await sleep(script.tokenDelayMs);
      if (socket.readyState !== socket.OPEN) return;
      socket.send(JSON.stringify({ token: script.tokens[i] }));
    }
    tracking.finished();
    socket.send(JSON.stringify({ done: true, ...(script.usage ? { usage: { prompt_tokens: script.usage.prompt, completion_tokens: script.usage.completion } } : {}) }));
  }
}
