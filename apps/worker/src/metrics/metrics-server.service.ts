import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { LOGGER, MetricsServer, TOKENWIRE_CONFIG, TokenwireMetrics, type Logger, type TokenwireConfig } from '@tokenwire/core';

/** The worker has no HTTP api: Prometheus scrapes `GET /metrics` on `worker.metricsPort`. */
@Injectable()
export class MetricsServerService implements OnModuleInit, OnApplicationShutdown {
  private readonly server: MetricsServer;
  port?: number;

  constructor(
    metrics: TokenwireMetrics,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.server = new MetricsServer(metrics, logger);
  }

  async onModuleInit(): Promise<void> {
    this.port = await this.server.listen(this.config.worker.metricsPort, this.config.api.host);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.server.close();
  }
}
