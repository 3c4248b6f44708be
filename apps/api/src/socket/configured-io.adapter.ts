import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';
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
    const server: Server = super.createIOServer(port, {
      ...options,
      // Only frames above 1 KB are worth deflating; per-token events are smaller.
      perMessageDeflate: this.config.api.socketCompression ? { threshold: 1024 } : false,
    } as ServerOptions);
    // Counted when scraped: connections of every namespace share the engine.
    this.app.get(TokenwireMetrics).countSockets = () => server.engine?.clientsCount ?? 0;
    return server;
  }
}
