import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { GENERATIONS_QUEUE, type RedisKeys } from '@tokenwire/contracts';
import {
  GenerationFinisher,
  GenerationMetaStore,
  LIVE_JOB_STATES,
  LOGGER,
  REDIS_CLIENT,
  REDIS_KEYS,
  TOKENWIRE_CONFIG,
  UnfinishedGenerations,
  bullConnection,
  closeBullConnection,
  type Logger,
  type TokenwireConfig,
} from '@tokenwire/core';
import { LeaderFreeSweep } from '../sweeps/leader-free-sweep';

/** Generations looked at per sweep. */
const SWEEP_BATCH = 200;

/**
 * Ends generations whose owner died: no terminal event and no live job (an api killed between
 * removing a queued job and writing `cancelled`, a worker that could not reach Redis for longer
 * than it retries the terminal write). Every worker runs it; a lock that expires by itself lets
 * one of them sweep per interval, so there is no leader to lose.
 */
@Injectable()
export class AbandonedGenerationReaper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly connection: ReturnType<typeof bullConnection>;
  private readonly queue: Queue;
  private readonly sweeper: LeaderFreeSweep;

  constructor(
    private readonly unfinished: UnfinishedGenerations,
    private readonly metaStore: GenerationMetaStore,
    private readonly finisher: GenerationFinisher,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.connection = bullConnection(config.redis);
    this.queue = new Queue(GENERATIONS_QUEUE, { connection: this.connection, prefix: keys.bullPrefix() });
    this.sweeper = new LeaderFreeSweep(redis, keys.reaperLock(), LeaderFreeSweep.intervalFor(config.generations.abandonAfterMs), () => this.sweepOnce(), (error) =>
      logger.warn({ err: error }, 'cannot sweep for abandoned generations'),
    );
  }

  onApplicationBootstrap(): void {
    this.sweeper.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.sweeper.stop();
    await this.queue.close();
    await closeBullConnection(this.connection);
  }

  /** One sweep, if no other worker holds this interval's lock. Returns how many generations it ended. */
  sweep(): Promise<number> {
    return this.sweeper.run();
  }

  private async sweepOnce(): Promise<number> {
    const ids = await this.unfinished.createdBefore(Date.now() - this.config.generations.abandonAfterMs, SWEEP_BATCH);
    let ended = 0;
    for (const id of ids) if (await this.reap(id)) ended++;
    return ended;
  }

  private async reap(id: string): Promise<boolean> {
    if (await this.redis.exists(this.keys.terminalMarker(id))) {
      await this.unfinished.remove(id); // ended, but its owner died before it could say so here
      return false;
    }
    if (LIVE_JOB_STATES.has(await this.queue.getJobState(id))) return false;
    const meta = await this.metaStore.get(id);
    if (!meta) {
      await this.unfinished.remove(id); // expired: nothing left to end (its tenant slot expires by age)
      return false;
    }
    const wrote = await this.finisher.finish(
      { id, tenantId: meta.tenantId, model: meta.model },
      { type: 'error', code: 'abandoned', message: 'the generation lost its owner (a process died or Redis was unreachable) before it ended' },
    );
    if (wrote) this.logger.warn({ jobId: id, tenantId: meta.tenantId }, 'ended an abandoned generation');
    else await this.unfinished.remove(id);
    return wrote;
  }
}
