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

/**
 * Admission of one generation in one step: a request from each per-minute bucket, then a slot among
 * the tenant's unfinished generations. The keys share the tenant's hash tag (one slot on a Cluster).
 * KEYS: 1 requests bucket, 2 tokens bucket, 3 the tenant's unfinished set
 * ARGV: 1 requests per minute, 2 tokens per minute, 3 now (ms), 4 bucket ttl (s), 5 generation id,
 *       6 most unfinished generations, 7 age (ms) past which an unfinished entry is dropped as stale
 * Takes from the buckets only when both have a request's worth; adds the generation only when the
 * tenant has room. Returns {refused (0 admitted, 1 requests, 2 tokens, 3 unfinished cap), unfinished
 * count with this one, then per bucket (requests, tokens): ms until enough, whole units left, ms until full}.
 */
const ADMIT_LUA = `
local now = tonumber(ARGV[3])
local function bucket(key, capacity)
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local rate = capacity / 60000
  local tokens = math.min(capacity, (tonumber(state[1]) or capacity) + math.max(0, now - (tonumber(state[2]) or now)) * rate)
  local need = math.min(1, capacity)
  local wait = 0
  if tokens < need then wait = math.ceil((need - tokens) / rate) end
  return {tokens = tokens, rate = rate, capacity = capacity, wait = wait}
end
local buckets = {bucket(KEYS[1], tonumber(ARGV[1])), bucket(KEYS[2], tonumber(ARGV[2]))}
local refused, count = 0, 0
if buckets[1].wait > 0 then refused = 1 elseif buckets[2].wait > 0 then refused = 2 end
if refused == 0 then
  for i = 1, 2 do
    buckets[i].tokens = buckets[i].tokens - 1
    redis.call('HSET', KEYS[i], 'tokens', tostring(buckets[i].tokens), 'at', ARGV[3])
    redis.call('EXPIRE', KEYS[i], ARGV[4])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[7]))
  count = redis.call('ZCARD', KEYS[3]) + 1
  if count > tonumber(ARGV[6]) then refused = 3 else redis.call('ZADD', KEYS[3], now, ARGV[5]) end
end
local reply = {refused, count}
for i = 1, 2 do
  local b = buckets[i]
  reply[#reply + 1] = b.wait
  reply[#reply + 1] = math.floor(b.tokens)
  reply[#reply + 1] = math.ceil((b.capacity - b.tokens) / b.rate)
end
return reply
`;

interface BucketCommands {
  twTokenBucket(key: string, capacity: number, ratePerMs: number, cost: number, now: number, ttl: number, mode: 'take' | 'charge'): Promise<[number, number, number, number]>;
  twAdmit(requests: string, tokens: string, active: string, requestsPerMinute: number, tokensPerMinute: number, now: number, ttl: number, generationId: string, maxUnfinished: number, maxAgeMs: number): Promise<number[]>;
}

/** Why an admission was refused: a per-minute bucket ran dry, or the tenant has too many unfinished generations. */
export type AdmissionRefusal = 'requests_per_minute' | 'tokens_per_minute' | 'max_concurrent';

/** One admission: both buckets as the `x-ratelimit-*` headers report them, and the verdict. */
export interface Admission {
  requests: BucketState;
  tokens: BucketState;
  /** Unfinished generations of the tenant with this one (0 when a bucket refused first). */
  unfinished: number;
  refused?: AdmissionRefusal;
}

const REFUSALS: Record<number, AdmissionRefusal | undefined> = { 1: 'requests_per_minute', 2: 'tokens_per_minute', 3: 'max_concurrent' };

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
    if (!('twTokenBucket' in redis)) {
      redis.defineCommand('twTokenBucket', { numberOfKeys: 1, lua: TOKEN_BUCKET_LUA });
      redis.defineCommand('twAdmit', { numberOfKeys: 3, lua: ADMIT_LUA });
    }
    this.redis = redis as Redis & BucketCommands;
  }

  /**
   * Admits one generation in one round trip: a request from each per-minute bucket and a slot among the
   * tenant's unfinished generations (entries older than `maxAgeMs` are dropped first: whatever leaked
   * one cannot hold the slot for ever). Nothing is taken or added when it is refused.
   */
  async admit(tenantId: string, limits: { requestsPerMinute: number; tokensPerMinute: number; maxConcurrent: number }, generationId: string, maxAgeMs: number): Promise<Admission> {
    const k = this.keys;
    const [refused, unfinished, ...b] = await this.redis.twAdmit(
      k.rateBucket(tenantId, 'requests'),
      k.rateBucket(tenantId, 'tokens'),
      k.tenantActive(tenantId),
      limits.requestsPerMinute,
      limits.tokensPerMinute,
      Date.now(),
      120,
      generationId,
      limits.maxConcurrent,
      maxAgeMs,
    );
    const state = (i: number): BucketState => ({ waitMs: b[i]!, remaining: Math.max(0, b[i + 1]!), resetMs: Math.max(0, b[i + 2]!) });
    return { requests: state(0), tokens: state(3), unfinished: unfinished!, refused: REFUSALS[refused!] };
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
