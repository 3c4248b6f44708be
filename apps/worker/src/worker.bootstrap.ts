import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { PinoNestLogger, TokenwireMetrics, createLogger, reachableHost, loadConfig, resolveModels, type TokenwireConfigInput } from '@tokenwire/core';
import { WorkerModule } from './worker.module';
import { MetricsServerService } from './metrics/metrics-server.service';

/** Starts a worker: queue consumers only, no HTTP. `overrides` are for tests and embedding. */
export async function createWorker(overrides: TokenwireConfigInput = {}, env = process.env): Promise<INestApplicationContext> {
  const loaded = loadConfig(env, overrides);
  const logger = createLogger('worker', loaded.log);
  const config = await resolveModels(loaded, logger);
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, logger), {
    logger: new PinoNestLogger(logger),
  });
  app.enableShutdownHooks();
  await app.init();
  const metricsPort = app.get(MetricsServerService).port;
  // Every breaker starts closed; shown from the start, not only after its first change.
  const metrics = app.get(TokenwireMetrics);
  for (const model of config.models) metrics.circuitState.set({ model: model.name }, 0);
  const host = reachableHost(config.api.host);
  logger.info({ concurrency: config.worker.concurrency, models: config.models.map((m) => m.name), metricsUrl: `http://${host}:${metricsPort}/metrics` }, 'worker started');
  return app;
}
