import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@tokenwire/contracts';
import { BatchStore, LIVE_JOB_STATES, LOGGER, REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { LeaderFreeSweep } from '../sweeps/leader-free-sweep';
import { WorkerBatchFeeder } from './worker-batch-feeder.service';

/** Batches looked at per sweep (the least recently swept first, so every batch gets its turn). */
const SWEEP_BATCHES = 100;
/** A batch listed as unfinished with no state this long after it was listed: its api died while storing it. */
const UNSTORED_AFTER_MS = 10 * 60_000;

/**
 * Keeps every batch moving whatever process died where. Per unfinished batch it fills free slots
 * (an api that died after storing the batch, a worker that died after recording an item), re-adds the
 * job of an in-flight item whose job is missing (a feeder that died before `addBulk`; same job id, so
 * a job that does exist is left alone), and records as failed (`abandoned`) an in-flight item whose job
 * ended without a result (BullMQ failed it after its worker died under it twice). Every worker runs it;
 * a lock that expires by itself lets one of them sweep per interval, so there is no leader to lose.
 */
@Injectable()
export class BatchRecoveryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly sweeper: LeaderFreeSweep;

  constructor(
    private readonly store: BatchStore,
    private readonly feeder: WorkerBatchFeeder,
    @Inject(REDIS_CLIENT) redis: Redis,
    @Inject(REDIS_KEYS) keys: RedisKeys,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.sweeper = new LeaderFreeSweep(redis, keys.batchRecoveryLock(), LeaderFreeSweep.intervalFor(config.batches.recoverAfterMs), () => this.sweepOnce(), (error) =>
      logger.warn({ err: error }, 'cannot sweep unfinished batches'),
    );
  }

  onApplicationBootstrap(): void {
    this.sweeper.start();
  }

  onApplicationShutdown(): void {
    this.sweeper.stop();
  }

  /** One sweep, if no other worker holds this interval's lock. Returns how many items it moved on. */
  sweep(): Promise<number> {
    return this.sweeper.run();
  }

  private async sweepOnce(): Promise<number> {
    let moved = 0;
    for (const { id, sweptAt } of await this.store.unfinished(SWEEP_BATCHES)) moved += await this.recover(id, sweptAt);
    return moved;
  }

  private async recover(batchId: string, sweptAt: number): Promise<number> {
    const now = Date.now();
    const batch = await this.store.get(batchId);
    if (!batch) {
      // Still being stored, or its api died while storing it (then the client never got its id), or expired.
      if (now - sweptAt > UNSTORED_AFTER_MS) await this.store.forgetUnfinished(batchId);
      return 0;
    }
    if (batch.status === 'completed' || batch.status === 'cancelled') {
      await this.store.forgetUnfinished(batchId);
      return 0;
    }
    const { tenantId } = batch;
    const log = this.logger.child({ batchId, tenantId });
    let moved = await this.feeder.feed(batchId, tenantId);
    for (const { index, since } of await this.store.inFlight(batchId)) {
      if (now - since < this.config.batches.recoverAfterMs) continue; // its feeder may be adding the job right now
      const state = await this.feeder.jobState(batchId, index);
      if (LIVE_JOB_STATES.has(state)) continue;
      if (state === 'unknown') {
        log.warn({ index }, 'an in-flight batch item had no job (its feeder died); queued it again');
        await this.feeder.enqueue(batchId, tenantId, [index]);
        moved++;
        continue;
      }
      const input = await this.store.item(batchId, index);
      if (!input) continue;
      const { recorded, taken } = await this.store.record(batchId, index, {
        id: `batch_req_${index}`,
        custom_id: input.custom_id,
        response: null,
        error: { code: 'abandoned', message: `the item's job ended (${state}) without a result: its worker died under it more often than a job is recovered` },
      });
      await this.feeder.enqueue(batchId, tenantId, taken);
      if (recorded) {
        log.warn({ index, state }, 'a batch item ended without a result; recorded it as failed');
        moved++;
      }
    }
    await this.store.markSwept(batchId, now);
    return moved;
  }
}
