import type { Redis } from 'ioredis';
import type { Batch, BatchInputLine, BatchOutputLine, BatchStatus, RedisKeys } from '@tokenwire/contracts';
import { CANCEL_LUA, RECORD_LUA, TAKE_LUA } from './batch-store.scripts';

interface BatchCommands {
  twBatchTake(batch: string, pending: string, inflight: string, now: number, defaultConcurrency: number): Promise<string[]>;
  twBatchRecord(
    batch: string,
    results: string,
    pending: string,
    inflight: string,
    now: number,
    defaultConcurrency: number,
    index: number,
    line: string,
    counter: 'completed' | 'failed',
    ttlSeconds: number,
  ): Promise<[number, ...string[]]>;
  twBatchCancel(batch: string, pending: string, now: number): Promise<number>;
}

const PAGE = 500;

/** What `record` did: whether the result was new, and the indexes taken to fill the freed slot (to be queued by the caller). */
export interface RecordOutcome {
  recorded: boolean;
  taken: number[];
}

/** The error line of an item that had not started when its batch was cancelled. */
export const cancelledLine = (index: number, customId: string): BatchOutputLine => ({
  id: `batch_req_${index}`,
  custom_id: customId,
  response: null,
  error: { code: 'cancelled', message: 'the batch was cancelled before this item started' },
});

/**
 * Batches in Redis: the input lines, the indexes not yet handed to the queue (pending), those handed
 * over and not yet recorded (in flight: the batch's slots), the results and the counters, all under one
 * hash tag. Every move between those is one Lua step. Nothing of a batch is held in process memory.
 */
export class BatchStore {
  private readonly redis: Redis & BatchCommands;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
    /** Slots of a batch whose hash does not say (one created by a version before slots were stored). */
    private readonly defaultConcurrency: number,
  ) {
    if (!('twBatchRecord' in redis)) {
      redis.defineCommand('twBatchTake', { numberOfKeys: 3, lua: TAKE_LUA });
      redis.defineCommand('twBatchRecord', { numberOfKeys: 4, lua: RECORD_LUA });
      redis.defineCommand('twBatchCancel', { numberOfKeys: 2, lua: CANCEL_LUA });
    }
    this.redis = redis as Redis & BatchCommands;
  }

  /**
   * Stores a batch with `concurrency` slots. It is listed as unfinished before anything else is written,
   * so a batch whose api dies after storing it (before feeding it) is fed by the recovery sweep.
   */
  async create(id: string, tenantId: string, lines: BatchInputLine[], concurrency: number, now = Date.now()): Promise<void> {
    const k = this.keys;
    await this.redis.zadd(k.unfinishedBatches(), now, id);
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
      .hset(k.batch(id), { id, tenantId, status: 'in_progress', total: lines.length, completed: 0, failed: 0, cancelled: 0, concurrency, createdAt: now })
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

  /** Moves pending indexes into the batch's free slots and returns them; the caller queues their jobs. */
  async take(id: string): Promise<number[]> {
    const k = this.keys;
    const taken = await this.redis.twBatchTake(k.batch(id), k.batchPending(id), k.batchInflight(id), Date.now(), this.defaultConcurrency);
    return taken.map(Number);
  }

  /** The in-flight indexes and when each was handed to the queue (ms). */
  async inFlight(id: string): Promise<Array<{ index: number; since: number }>> {
    const flat = await this.redis.zrange(this.keys.batchInflight(id), 0, -1, 'WITHSCORES');
    const entries: Array<{ index: number; since: number }> = [];
    for (let i = 0; i < flat.length; i += 2) entries.push({ index: Number(flat[i]), since: Number(flat[i + 1]) });
    return entries;
  }

  async hasResult(id: string, index: number): Promise<boolean> {
    return (await this.redis.hexists(this.keys.batchResults(id), String(index))) === 1;
  }

  /** Batches not known to have ended, least recently swept first. */
  async unfinished(limit: number): Promise<Array<{ id: string; sweptAt: number }>> {
    const flat = await this.redis.zrange(this.keys.unfinishedBatches(), 0, limit - 1, 'WITHSCORES');
    const entries: Array<{ id: string; sweptAt: number }> = [];
    for (let i = 0; i < flat.length; i += 2) entries.push({ id: flat[i]!, sweptAt: Number(flat[i + 1]) });
    return entries;
  }

  async markSwept(id: string, now = Date.now()): Promise<void> {
    await this.redis.zadd(this.keys.unfinishedBatches(), 'XX', now, id);
  }

  async forgetUnfinished(id: string): Promise<void> {
    await this.redis.zrem(this.keys.unfinishedBatches(), id);
  }

  async item(id: string, index: number): Promise<BatchInputLine | undefined> {
    const json = await this.redis.hget(this.keys.batchItems(id), String(index));
    return json ? (JSON.parse(json) as BatchInputLine) : undefined;
  }

  /** Records an item's outcome once and frees its slot, taking the indexes that fill it. */
  async record(id: string, index: number, line: BatchOutputLine): Promise<RecordOutcome> {
    const k = this.keys;
    const [recorded, ...taken] = await this.redis.twBatchRecord(
      k.batch(id),
      k.batchResults(id),
      k.batchPending(id),
      k.batchInflight(id),
      Date.now(),
      this.defaultConcurrency,
      index,
      JSON.stringify(line),
      line.error ? 'failed' : 'completed',
      this.ttlSeconds,
    );
    return { recorded: recorded === 1, taken: taken.map(Number) };
  }

  /** Cancels what has not started. Returns the number cancelled, or undefined when the batch had ended. */
  async cancel(id: string): Promise<number | undefined> {
    const n = await this.redis.twBatchCancel(this.keys.batch(id), this.keys.batchPending(id), Date.now());
    return n < 0 ? undefined : n;
  }

  /**
   * Result lines in input order, a page at a time (never the whole batch in memory). Once a batch is
   * cancelling, an item neither recorded nor in flight was cancelled: the errors carry it as `cancelled`.
   */
  async *results(id: string, total: number, which: 'output' | 'errors'): AsyncGenerator<string> {
    const k = this.keys;
    const status = await this.redis.hget(k.batch(id), 'status');
    const cancelling = which === 'errors' && (status === 'cancelling' || status === 'cancelled');
    const inFlight = cancelling ? new Set((await this.inFlight(id)).map((entry) => entry.index)) : new Set<number>();
    for (let start = 0; start < total; start += PAGE) {
      const fields = Array.from({ length: Math.min(PAGE, total - start) }, (_, i) => String(start + i));
      const results = await this.redis.hmget(k.batchResults(id), ...fields);
      const cancelled = cancelling ? fields.filter((field, i) => !results[i] && !inFlight.has(Number(field))) : [];
      const inputs = cancelled.length ? await this.redis.hmget(k.batchItems(id), ...cancelled) : [];
      const inputOf = new Map(cancelled.map((field, i) => [field, inputs[i]]));
      for (const [i, json] of results.entries()) {
        const field = fields[i]!;
        if (json) {
          if ((which === 'errors') === json.includes('"response":null')) yield json;
        } else if (inputOf.has(field)) {
          const input = inputOf.get(field);
          if (input) yield JSON.stringify(cancelledLine(Number(field), (JSON.parse(input) as BatchInputLine).custom_id));
        }
      }
    }
  }
}
