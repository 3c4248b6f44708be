import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import { GENERATIONS_QUEUE, type RedisKeys } from '@tokenwire/contracts';
import { BatchFeeder, BatchStore, REDIS_KEYS, TOKENWIRE_CONFIG, bullConnection, closeBullConnection, type TokenwireConfig } from '@tokenwire/core';

/** The worker's batch feeder, on a queue connection of its own that closes with the app. */
@Injectable()
export class WorkerBatchFeeder extends BatchFeeder implements OnApplicationShutdown {
  private readonly ownQueue: Queue;
  private readonly connection: ReturnType<typeof bullConnection>;

  constructor(store: BatchStore, @Inject(TOKENWIRE_CONFIG) config: TokenwireConfig, @Inject(REDIS_KEYS) keys: RedisKeys) {
    const connection = bullConnection(config.redis);
    const queue = new Queue(GENERATIONS_QUEUE, { connection, prefix: keys.bullPrefix() });
    super(store, queue, { attempts: config.batches.itemAttempts, keepFailedJobsSeconds: config.generations.ttlSeconds });
    this.ownQueue = queue;
    this.connection = connection;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.ownQueue.close();
    await closeBullConnection(this.connection);
  }
}
