import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { AddressInfo } from 'node:net';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import { PinoNestLogger, createLogger, reachableHost, describeRedis, loadConfig, resolveModels, type TokenwireConfigInput } from '@tokenwire/core';
import { ApiModule } from './api.module';
import { ConfiguredIoAdapter } from './socket/configured-io.adapter';
import { QUEUE_DASHBOARD_PATH, mountQueueDashboard } from './admin/queue-dashboard';
import { MetricsServerService } from './metrics/metrics-server.service';

export interface RunningApi {
  app: NestExpressApplication;
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Prometheus endpoint of this process, on `api.metricsPort`. */
  metricsUrl: string;
  close(): Promise<void>;
}

/** Starts the api: HTTP routes, SSE and Socket.IO. `overrides` are for tests and embedding. */
export async function createApi(overrides: TokenwireConfigInput = {}, env = process.env): Promise<RunningApi> {
  const loaded = loadConfig(env, overrides);
  const logger = createLogger('api', loaded.log);
  const config = await resolveModels(loaded, logger);
  const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot(config, logger), {
    logger: new PinoNestLogger(logger),
    bodyParser: false,
  });
  // Batch uploads (JSONL or a JSON array) may be far larger than a chat request; parsed here, the global parser then skips them.
  const batchLimit = config.batches.bodyLimit;
  app.use('/v1/batches', express.json({ limit: batchLimit }), express.text({ type: ['application/jsonl', 'application/x-ndjson', 'text/plain'], limit: batchLimit }));
  app.useBodyParser('json', { limit: config.api.bodyLimit });
  app.useWebSocketAdapter(new ConfiguredIoAdapter(app, config));
  app.enableShutdownHooks();
  mountQueueDashboard(app);
  app.use(playgroundFiles(path.join(__dirname, '..', 'public')));
  await app.listen(config.api.port, config.api.host);
  const address = app.getHttpServer().address() as AddressInfo;
  const host = reachableHost(config.api.host);
  const url = `http://${host}:${address.port}`;
  const metricsUrl = `http://${host}:${app.get(MetricsServerService).port}/metrics`;
  // What a person needs to start (scripts/start-all.mjs turns this line into the banner).
  const links = { playground: `${url}/`, docs: `${url}/docs`, metrics: metricsUrl, queueDashboard: `${url}${QUEUE_DASHBOARD_PATH}` };
  logger.info({ url, metricsUrl, links, models: config.models.map((m) => m.name), auth: config.auth.enabled, redis: describeRedis(config.redis) }, 'api listening');
  return { app, url, metricsUrl, close: () => app.close() };
}

/**
 * The playground at / (it authenticates with the key the user enters). Only the files in `dir`,
 * by their exact names, reach the file server: an encoded `..%2F` or any path under /v1 never does,
 * and a miss falls through to the router's 404 in the API's error shape.
 */
function playgroundFiles(dir: string): express.RequestHandler {
  const files = new Set(readdirSync(dir).map((name) => `/${name}`));
  files.add('/');
  const serve = express.static(dir, { index: 'index.html', redirect: false, dotfiles: 'ignore' });
  return (request, response, next) => ((request.method === 'GET' || request.method === 'HEAD') && files.has(request.path) ? serve(request, response, next) : next());
}
