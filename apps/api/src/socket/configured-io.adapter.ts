import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';
import type WebSocket from 'ws';
import { GENERATIONS_NAMESPACE, type ConnectionErrorEvent } from '@tokenwire/contracts';
import { TokenwireMetrics, type TokenwireConfig } from '@tokenwire/core';

/** Socket.IO server options that come from the runtime config (gateway decorators are static). */
export class ConfiguredIoAdapter extends IoAdapter {
  constructor(
    private readonly app: INestApplicationContext,
    private readonly config: TokenwireConfig,
  ) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const limit = this.config.api.socketMaxBytes;
    const server = super.createIOServer(port, {
      ...options,
      // Only frames above 1 KB are worth deflating; per-token events are smaller.
      perMessageDeflate: this.config.api.socketCompression ? { threshold: 1024 } : false,
      maxHttpBufferSize: limit,
    } as ServerOptions) as Server;
    // Counted when scraped: connections of every namespace share the engine.
    this.app.get(TokenwireMetrics).countSockets = () => server.engine?.clientsCount ?? 0;
    server.engine.on('connection', (connection: EngineConnection) => {
      explainOversizeFrames(connection.transport, limit);
      connection.on('upgrade', (transport: EngineTransport) => explainOversizeFrames(transport, limit));
    });
    return server;
  }
}

interface EngineTransport {
  name: string;
  socket?: WebSocket;
}
interface EngineConnection {
  transport: EngineTransport;
  on(event: 'upgrade', listener: (transport: EngineTransport) => void): void;
}

/**
 * The `ws` library refuses a WebSocket frame over `maxHttpBufferSize` from its header alone (the
 * payload is never buffered) and closes with 1009, which Socket.IO clients only see as "transport
 * close". Just before that close, this sends an `error` event naming the limit, and gives the close
 * frame a reason. The frame is written by hand: an Engine.IO message (`4`) holding a Socket.IO
 * EVENT (`2`) for the namespace, as socket.io-parser would encode it.
 */
function explainOversizeFrames(transport: EngineTransport, limit: number): void {
  const ws = transport.name === 'websocket' ? transport.socket : undefined;
  if (!ws) return;
  const close = ws.close.bind(ws);
  ws.close = (code?: number, reason?: string | Buffer) => {
    if (code !== 1009 || ws.readyState !== ws.OPEN) return close(code, reason);
    const message = `a message over ${limit} bytes was sent (the server's limit, api.socketMaxBytes); the connection is closed`;
    const event: ConnectionErrorEvent = { type: 'error', code: 'payload_too_large', status: 413, message };
    ws.send(`42${GENERATIONS_NAMESPACE},${JSON.stringify(['error', event])}`);
    close(1009, `message over ${limit} bytes`);
  };
}
