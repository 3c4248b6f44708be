import { Inject, Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOGGER, TOKENWIRE_CONFIG, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { GenerationStreamService } from '../streams/generation-stream.service';
import { SseStream } from '../sse/sse-stream';

/**
 * SIGTERM on the api: stop accepting connections, report not ready, let open
 * streams finish for up to `api.shutdownGraceMs`, then let shutdown close the rest
 * (job-stream and Socket.IO clients resume on another api process from their last seq).
 */
@Injectable()
export class DrainService implements BeforeApplicationShutdown {
  private draining = false;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly streams: GenerationStreamService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  get isDraining(): boolean {
    return this.draining;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.draining = true;
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    server?.close(); // stops accepting; open connections stay
    server?.closeIdleConnections();
    const deadline = Date.now() + this.config.api.shutdownGraceMs;
    // Subscriptions end with their terminal event; an SSE response ends once its last (possibly compressed) bytes are out.
    const open = () => this.streams.activeSubscriptionCount() + SseStream.openCount;
    if (open() > 0) this.logger.info({ openStreams: open(), graceMs: this.config.api.shutdownGraceMs }, 'draining open streams');
    while (open() > 0 && Date.now() < deadline) await sleep(50);
    const left = open();
    if (left > 0) this.logger.warn({ openStreams: left }, 'grace period over; closing the remaining streams');
    this.streams.closeAll();
    server?.closeAllConnections();
  }
}
