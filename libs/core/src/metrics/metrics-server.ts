import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logging/logger';
import type { TokenwireMetrics } from './metrics';

/**
 * Prometheus `GET /metrics` on a port of its own, apart from the public api: scraping needs
 * no key, and what the metrics reveal (queue depth, key events) stays off the client-facing port.
 */
export class MetricsServer {
  private server?: http.Server;

  constructor(
    private readonly metrics: TokenwireMetrics,
    private readonly logger: Logger,
    /** Refreshes gauges that are read at scrape time. */
    private readonly beforeScrape: () => Promise<void> = async () => undefined,
  ) {}

  /** Listens on `port` (0: any free port) and returns the port it got. */
  async listen(port: number, host: string): Promise<number> {
    const server = http.createServer((request, response) => {
      if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
        return;
      }
      this.render().then(
        (body) => response.writeHead(200, { 'content-type': this.metrics.registry.contentType, 'cache-control': 'no-store' }).end(body),
        (error: unknown) => {
          this.logger.error({ err: error }, 'cannot render metrics');
          response.writeHead(500).end();
        },
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, resolve);
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async render(): Promise<string> {
    await this.beforeScrape();
    return this.metrics.registry.metrics();
  }
}
