import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOGGER, TOKENWIRE_CONFIG, TokenwireMetrics, type Logger, type TokenwireConfig } from '@tokenwire/core';

/** The worker has no HTTP api: a small server answers Prometheus on `GET /metrics`. */
@Injectable()
export class MetricsServerService implements OnModuleInit, OnApplicationShutdown {
  private server?: http.Server;
  port?: number;

  constructor(
    private readonly metrics: TokenwireMetrics,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    this.server = http.createServer((request, response) => {
      if (request.url !== '/metrics') {
        response.writeHead(404).end();
        return;
      }
      this.metrics.registry.metrics().then(
        (body) => response.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body),
        (error: unknown) => {
          this.logger.error({ err: error }, 'cannot render metrics');
          response.writeHead(500).end();
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.worker.metricsPort, this.config.api.host, resolve);
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  async onApplicationShutdown(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
