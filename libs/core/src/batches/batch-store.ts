import type { Redis } from 'ioredis';
import type { Batch, BatchInputLine, BatchOutputLine, BatchStatus, RedisKeys } from '@tokenwire/contracts';

/**
 * Records an item's result once and counts it; ends the batch when every item is accounted for.
 * KEYS: 1 batch hash, 2 results hash. ARGV: 1 index, 2 output line JSON, 3 counter (completed|failed), 4 now.
 * Returns 1 when recorded, 0 when the item already had a result (a re-run after a crash).
 */
const RECORD_LUA = `
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
local c = redis.call('HMGET', KEYS[1], 'total', 'completed', 'failed', 'cancelled', 'status')
if tonumber(c[2]) + tonumber(c[3]) + tonumber(c[4]) >= tonumber(c[1]) then
  redis.call('HSET', KEYS[1], 'status', (c[5] == 'cancelling') and 'cancelled' or 'completed', 'finishedAt', ARGV[4])
end
return 1
`;

/**
 * Cancels the items not yet enqueued; the ones running finish. KEYS: 1 batch hash, 2 pending list. ARGV: 1 now.
 * Returns how many were cancelled, or -1 when the batch had already ended.
 */
const CANCEL_LUA = `
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'in_progress' then return -1 end
local n = redis.call('LLEN', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('HINCRBY', KEYS[1], 'cancelled', n)
local c = redis.call('HMGET', KEYS[1], 'total', 'completed', 'failed', 'cancelled')
if tonumber(c[2]) + tonumber(c[3]) + tonumber(c[4]) >= tonumber(c[1]) then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finishedAt', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'status', 'cancelling')
end
return n
`;

interface BatchCommands {
  twBatchRecord(batch: string, results: string, index: number, line: string, counter: 'completed' | 'failed', now: number): Promise<number>;
  twBatchCancel(batch: string, pending: string, now: number): Promise<number>;
}

const PAGE = 500;

/**
 * Batches in Redis: the input lines, the indexes not yet enqueued, the results and
 * the counters, all under one hash tag. Nothing of a batch is held in process memory.
 */
export class BatchStore {
  private readonly redis: Redis & BatchCommands;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {
    if (!('twBatchRecord' in redis)) {
      redis.defineCommand('twBatchRecord', { numberOfKeys: 2, lua: RECORD_LUA });
      redis.defineCommand('twBatchCancel', { numberOfKeys: 2, lua: CANCEL_LUA });
    }
    this.redis = redis as Redis & BatchCommands;
  }

  async create(id: string, tenantId: string, lines: BatchInputLine[], now = Date.now()): Promise<void> {
    const k = this.keys;
    for (let start = 0; start < lines.length; start += PAGE) {
      const page: Record<string, string> = {};
      lines.slice(start, start + PAGE).forEach((line, i) => (page[start + i] = JSON.stringify(line)));
      await this.redis.hset(k.batchItems(id), page);
    }
    for (let start = 0; start < lines.length; start += 10_000) {
      await this.redis.rpush(k.batchPending(id), ...lines.slice(start, start + 10_000).map((_, i) => String(start + i)));
    }
    await this.redis
      .multi()
      .hset(k.batch(id), { id, tenantId, status: 'in_progress', total: lines.length, completed: 0, failed: 0, cancelled: 0, createdAt: now })
      .expire(k.batch(id), this.ttlSeconds)
      .expire(k.batchItems(id), this.ttlSeconds)
      .expire(k.batchPending(id), this.ttlSeconds)
      .exec();
  }

  /** The batch if it exists and belongs to `tenantId`. */
  async get(id: string, tenantId?: string): Promise<(Batch & { tenantId: string }) | undefined> {
    const hash = await this.redis.hgetall(this.keys.batch(id));
    if (!hash.id || (tenantId !== undefined && hash.tenantId !== tenantId)) return undefined;
    return {
      id,
      object: 'batch',
      tenantId: hash.tenantId!,
      status: hash.status as BatchStatus,
      request_counts: { total: Number(hash.total), completed: Number(hash.completed), failed: Number(hash.failed), cancelled: Number(hash.cancelled) },
      created_at: Math.floor(Number(hash.createdAt) / 1000),
      ...(hash.finishedAt ? { finished_at: Math.floor(Number(hash.finishedAt) / 1000) } : {}),
    };
  }

  /** Takes the next item index to enqueue, or undefined when none is left (or the batch was cancelled). */
  async takePending(id: string, count = 1): Promise<number[]> {
    const taken = await this.redis.lpop(this.keys.batchPending(id), count);
    return (taken ?? []).map(Number);
  }

  async item(id: string, index: number): Promise<BatchInputLine | undefined> {
    const json = await this.redis.hget(this.keys.batchItems(id), String(index));
    return json ? (JSON.parse(json) as BatchInputLine) : undefined;
  }

  /** Records an item's outcome once. False when it was already recorded. */
  async record(id: string, index: number, line: BatchOutputLine): Promise<boolean> {
    const k = this.keys;
    const recorded = await this.redis.twBatchRecord(k.batch(id), k.batchResults(id), index, JSON.stringify(line), line.error ? 'failed' : 'completed', Date.now());
    await this.redis.expire(k.batchResults(id), this.ttlSeconds);
    return recorded === 1;
  }

  /** Cancels what has not started. Returns the number cancelled, or undefined when the batch had ended. */
  async cancel(id: string): Promise<number | undefined> {
    const n = await this.redis.twBatchCancel(this.keys.batch(id), this.keys.batchPending(id), Date.now());
    return n < 0 ? undefined : n;
  }

  /** Result lines in input order, a page at a time (never the whole batch in memory). */
  async *results(id: string, total: number, which: 'output' | 'errors'): AsyncGenerator<string> {
    for (let start = 0; start < total; start += PAGE) {
      const fields = Array.from({ length: Math.min(PAGE, total - start) }, (_, i) => String(start + i));
      for (const json of await this.redis.hmget(this.keys.batchResults(id), ...fields)) {
        if (!json) continue;
        const isError = json.includes('"response":null');
        if ((which === 'errors') === isError) yield json;
      }
    }
  }
}
