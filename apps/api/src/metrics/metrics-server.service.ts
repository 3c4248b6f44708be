import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { GENERATIONS_QUEUE } from '@tokenwire/contracts';
import { LOGGER, MetricsServer, REDIS_CLIENT, TOKENWIRE_CONFIG, TokenwireMetrics, type Logger, type TokenwireConfig } from '@tokenwire/core';

/**
 * This api process's Prometheus `GET /metrics`, on `api.metricsPort`: not on the public port,
 * where it would be one more route open without a key (as the worker's is on `worker.metricsPort`).
 */
@Injectable()
export class MetricsServerService implements OnModuleInit, OnApplicationShutdown {
  private readonly server: MetricsServer;
  port?: number;

  constructor(
    metrics: TokenwireMetrics,
    @InjectQueue(GENERATIONS_QUEUE) queue: Queue,
    @Inject(REDIS_CLIENT) redis: Redis,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.server = new MetricsServer(metrics, logger, async () => {
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      for (const [state, count] of Object.entries(counts)) metrics.queueDepth.set({ state }, count);
      const memory = await redis.info('memory');
      metrics.redisMemoryUsed.set(infoField(memory, 'used_memory'));
      metrics.redisMemoryMax.set(infoField(memory, 'maxmemory'));
    });
  }

  async onModuleInit(): Promise<void> {
    this.port = await this.server.listen(this.config.api.metricsPort, this.config.api.host);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.server.close();
  }
}

/** A numeric field of Redis INFO output (`name:value` lines). */
function infoField(info: string, name: string): number {
  return Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
}
