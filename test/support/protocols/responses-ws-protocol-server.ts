import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { receivedResponsesRequest, writeResponsesEvents } from './http-protocol-servers';
import { CloseTracker, sleep, type ProtocolScript, type ProtocolServer, type ReceivedRequest } from './protocol-server';

/** OpenAI's Responses API in WebSocket mode: any number of `response.create` on one connection. */
export class ResponsesWsProtocolServer implements ProtocolServer {
  readonly providerType = 'openai-responses-ws';
  readonly transport = 'websocket' as const;
  script: ProtocolScript = { tokens: ['Hello', ',', ' world'] };
  requests = 0;
  connections = 0;
  lastRequest: Record<string, unknown> | undefined;
  private readonly closes = new CloseTracker();
  private server?: WebSocketServer;

  constructor(private readonly extraOptions: Record<string, unknown> = {}) {}

  providerOptions() {
    return { url: `ws://127.0.0.1:${(this.server!.address() as AddressInfo).port}/v1/responses`, apiKey: 'sk-test', ...this.extraOptions };
  }

  received(): ReceivedRequest {
    return receivedResponsesRequest(this.lastRequest ?? {});
  }

  upstreamCodeFor(refuse: NonNullable<ProtocolScript['refuse']>): string {
    return refuse.code;
  }

  lastEarlyClose(): Promise<number> {
    return this.closes.lastEarlyClose();
  }

  async start(): Promise<void> {
    this.server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => this.server!.once('listening', () => resolve()));
    this.server.on('connection', (socket) => {
      this.connections++;
      socket.on('message', (data) => {
        const event = JSON.parse(data.toString()) as Record<string, unknown>;
        if (event.type === 'response.create') void this.answer(socket, event);
        else socket.send(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: `unknown event ${String(event.type)}` } }));
      });
    });
  }

  async stop(): Promise<void> {
    for (const client of this.server?.clients ?? []) client.terminate();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private async answer(socket: WebSocket, request: Record<string, unknown>): Promise<void> {
    this.requests++;
    this.lastRequest = request;
    const tracking = this.closes.opened();
    socket.once('close', tracking.closed);
    const script = this.script;
    const send = (type: string, payload: Record<string, unknown>) => socket.readyState === socket.OPEN && socket.send(JSON.stringify({ type, ...payload }));
    if (script.silent) return;
    if (script.refuse) {
      const { status, code, message, param } = script.refuse;
      send('error', { status, error: { type: 'invalid_request_error', code, message, param: param ?? null } });
      return;
    }
    await writeResponsesEvents(
      send,
      script,
      async (writers) => {
        for (let i = 0; i < script.tokens.length; i++) {
          if (script.errorAfter === i) {
            send('error', { error: { type: 'server_error', message: 'the model crashed' } });
            return false;
          }
          if (script.malformedAfter === i) {
            writers.malformed();
            return false;
          }
          if (script.dropAfter === i) {
            await sleep(50);
            socket.terminate();
            return false;
          }
          if (script.unknownEventAfter === i) writers.unknown();
          if (script.tokenDelayMs) await sleep(script.tokenDelayMs);
          if (socket.readyState !== socket.OPEN) return false;
          writers.token(script.tokens[i]!);
        }
        tracking.finished();
        socket.off('close', tracking.closed);
        return true;
      },
      () => socket.send('{"type": "response.output_text.delta", broken'),
    );
  }
}
