import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * KEYS: 1 lease set. ARGV: 1 holder, 2 limit, 3 now (ms), 4 lease ms.
 * Drops expired leases, then takes one if fewer than `limit` are held. Returns 1 or 0.
 */
const ACQUIRE_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
`;

interface SemaphoreCommands {
  twAcquireLease(key: string, holder: string, limit: number, now: number, leaseMs: number): Promise<number>;
}

const LEASE_MS = 30_000;

/**
 * A counting semaphore shared by every worker: at most `limit` holders of `key` at once.
 * Leases expire, so a crashed worker's slot frees itself; a running call renews its lease.
 */
export class ModelSemaphore {
  private readonly redis: Redis & SemaphoreCommands;

  constructor(redis: Redis) {
    if (!('twAcquireLease' in redis)) redis.defineCommand('twAcquireLease', { numberOfKeys: 1, lua: ACQUIRE_LUA });
    this.redis = redis as Redis & SemaphoreCommands;
  }

  /** Waits (polling with jitter) until a slot is free; returns the release function. */
  async acquire(key: string, holder: string, limit: number, signal: AbortSignal): Promise<() => Promise<void>> {
    for (let wait = 20; ; wait = Math.min(wait * 1.5, 500)) {
      if (await this.redis.twAcquireLease(key, holder, limit, Date.now(), LEASE_MS)) break;
      await sleep(wait * (0.5 + Math.random()), undefined, { signal });
    }
    const renew = setInterval(() => {
      this.redis.twAcquireLease(key, holder, limit, Date.now(), LEASE_MS).catch(() => undefined);
    }, LEASE_MS / 3);
    renew.unref();
    return async () => {
      clearInterval(renew);
      await this.redis.zrem(key, holder);
    };
  }
}
