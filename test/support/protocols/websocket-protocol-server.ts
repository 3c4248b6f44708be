import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { CloseTracker, sleep, type ProtocolScript, type ProtocolServer } from './protocol-server';

/** A WebSocket inference server: one JSON request in, `{token}` messages out, then `{done: true, usage}`. */
export class WebSocketProtocolServer implements ProtocolServer {
  readonly providerType = 'websocket';
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

  lastEarlyClose(): Promise<number> {
    return this.closes.lastEarlyClose();
  }

  async start(): Promise<void> {
    this.server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: this.perMessageDeflate });
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
    for (let i = 0; i < script.tokens.length; i++) {
      if (script.errorAfter === i) {
        socket.send(JSON.stringify({ error: 'inference failed' }));
        return;
      }
      if (script.malformedAfter === i) {
        socket.send('this is { not json');
        return;
      }
      if (script.tokenDelayMs) await sleep(script.tokenDelayMs);
      if (socket.readyState !== socket.OPEN) return;
      socket.send(JSON.stringify({ token: script.tokens[i] }));
    }
    tracking.finished();
    socket.send(JSON.stringify({ done: true, ...(script.usage ? { usage: { prompt_tokens: script.usage.prompt, completion_tokens: script.usage.completion } } : {}) }));
  }
}
