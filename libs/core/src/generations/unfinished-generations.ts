import type { Redis } from 'ioredis';
import type { RedisKeys } from '@tokenwire/contracts';

/**
 * Every generation from its creation until its terminal event, in one sorted set by creation
 * time: what the reaper sweeps for generations whose owner died. One key for the whole
 * deployment (two commands per generation); its own slot on a Cluster, so never in a MULTI.
 */
export class UnfinishedGenerations {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async add(generationId: string, createdAt: number): Promise<void> {
    await this.redis.zadd(this.keys.unfinishedGenerations(), createdAt, generationId);
  }

  async remove(generationId: string): Promise<void> {
    await this.redis.zrem(this.keys.unfinishedGenerations(), generationId);
  }

  /** Up to `limit` generations created before `cutoff` (ms), oldest first. */
  async createdBefore(cutoff: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.unfinishedGenerations(), '-inf', cutoff, 'LIMIT', 0, limit);
  }
}
