import type { Redis } from 'ioredis';
import type { RedisKeys } from '@tokenwire/contracts';
import type { TokenwireMetrics } from '../metrics/metrics';

/**
 * Refill-and-take on a token bucket, atomically, shared by every api process.
 * KEYS: 1 bucket hash. ARGV: 1 capacity, 2 refill per ms, 3 cost, 4 now (ms), 5 ttl (s), 6 mode
 * Mode `take`: takes `cost` if the bucket holds at least min(cost, capacity).
 * Mode `charge`: takes `cost` unconditionally (may go negative: usage known only afterwards).
 * Returns {taken (1/0), ms until enough (0 when taken), whole tokens left, ms until full}.
 */
const TOKEN_BUCKET_LUA = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local need = math.min(cost, capacity)
if ARGV[6] == 'take' and tokens < need then
  return {0, math.ceil((need - tokens) / rate), math.floor(tokens), math.ceil((capacity - tokens) / rate)}
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {1, 0, math.floor(tokens), math.ceil((capacity - tokens) / rate)}
`;

interface BucketCommands {
  twTokenBucket(key: string, capacity: number, ratePerMs: number, cost: number, now: number, ttl: number, mode: 'take' | 'charge'): Promise<[number, number, number, number]>;
}

/** A bucket after a take: what the `x-ratelimit-*` headers report. */
export interface BucketState {
  /** 0 when taken; else how long until enough is back. */
  waitMs: number;
  /** Whole units left (never below 0). */
  remaining: number;
  /** How long until the bucket is full again. */
  resetMs: number;
}

export interface GenerationUsage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * Per-tenant counters in Redis: unfinished generations (a sorted set, so ending
 * a generation twice cannot decrement twice), token buckets, and usage totals.
 */
export class TenantAccounting {
  private readonly redis: Redis & BucketCommands;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly metrics?: TokenwireMetrics,
  ) {
    if (!('twTokenBucket' in redis)) redis.defineCommand('twTokenBucket', { numberOfKeys: 1, lua: TOKEN_BUCKET_LUA });
    this.redis = redis as Redis & BucketCommands;
  }

  /** Takes `cost` from a per-minute bucket; `waitMs` is 0 when taken, else the wait until enough is back. */
  async take(tenantId: string, kind: 'requests' | 'tokens', perMinute: number, cost = 1): Promise<BucketState> {
    const [ok, waitMs, remaining, resetMs] = await this.redis.twTokenBucket(this.keys.rateBucket(tenantId, kind), perMinute, perMinute / 60_000, cost, Date.now(), 120, 'take');
    return { waitMs: ok === 1 ? 0 : waitMs, remaining: Math.max(0, remaining), resetMs: Math.max(0, resetMs) };
  }

  /**
   * Records a started generation; returns how many the tenant now has unfinished (this one included).
   * Entries older than `maxAgeMs` are dropped first: whatever leaked one (an owner that died before
   * even the reaper could see its generation) cannot hold the slot for ever.
   */
  async addActive(tenantId: string, generationId: string, maxAgeMs: number): Promise<number> {
    const key = this.keys.tenantActive(tenantId);
    const now = Date.now();
    const [, , count] = (await this.redis.multi().zremrangebyscore(key, '-inf', now - maxAgeMs).zadd(key, now, generationId).zcard(key).exec())!;
    return Number(count![1]);
  }

  async removeActive(tenantId: string, generationId: string): Promise<void> {
    await this.redis.zrem(this.keys.tenantActive(tenantId), generationId);
  }

  async activeCount(tenantId: string): Promise<number> {
    return this.redis.zcard(this.keys.tenantActive(tenantId));
  }

  /**
   * Books a finished generation once (its caller won the terminal write): usage per model,
   * the tokens-per-minute bucket, and the end of its active entry.
   */
  async recordFinished(tenantId: string, generationId: string, model: string, usage: GenerationUsage | undefined, tokensPerMinute: number): Promise<void> {
    const multi = this.redis.multi().zrem(this.keys.tenantActive(tenantId), generationId);
    const usageKey = this.keys.usage(tenantId);
    multi.hincrby(usageKey, `${model}|requests`, 1);
    if (usage) {
      multi.hincrby(usageKey, `${model}|prompt`, usage.promptTokens).hincrby(usageKey, `${model}|completion`, usage.completionTokens);
    }
    await multi.exec();
    if (usage) {
      this.metrics?.tenantTokens.inc({ tenant: tenantId, kind: 'prompt' }, usage.promptTokens);
      this.metrics?.tenantTokens.inc({ tenant: tenantId, kind: 'completion' }, usage.completionTokens);
      const cost = usage.promptTokens + usage.completionTokens;
      await this.redis.twTokenBucket(this.keys.rateBucket(tenantId, 'tokens'), tokensPerMinute, tokensPerMinute / 60_000, cost, Date.now(), 120, 'charge');
    }
  }

  async usage(tenantId: string): Promise<Record<string, { requests: number; promptTokens: number; completionTokens: number }>> {
    const fields = await this.redis.hgetall(this.keys.usage(tenantId));
    const models: Record<string, { requests: number; promptTokens: number; completionTokens: number }> = {};
    for (const [field, value] of Object.entries(fields)) {
      const cut = field.lastIndexOf('|');
      const model = field.slice(0, cut);
      const entry = (models[model] ??= { requests: 0, promptTokens: 0, completionTokens: 0 });
      const n = Number(value);
      const kind = field.slice(cut + 1);
      if (kind === 'requests') entry.requests = n;
      else if (kind === 'prompt') entry.promptTokens = n;
      else if (kind === 'completion') entry.completionTokens = n;
    }
    return models;
  }
}
