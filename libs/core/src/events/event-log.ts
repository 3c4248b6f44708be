import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  type GenerationStatus,
  type RedisKeys,
  type StreamEvent,
  type StreamEventBody,
  type TerminalEventBody,
} from '@tokenwire/contracts';
import { APPEND_EVENT_LUA, APPEND_EVENTS_LUA, APPEND_TERMINAL_LUA, CLAIM_RUN_LUA, LOG_BOUNDS_LUA } from './event-log.scripts';
import { EventAppendBatcher, type AppendTarget } from './event-append-batcher';

interface EventLogCommands {
  twAppendEvent(
    log: string,
    marker: string,
    meta: string,
    id: string,
    json: string,
    channel: string,
    maxEvents: number,
    ttl: number | '',
    runToken: string,
    publish: PublishCommand,
  ): Promise<number>;
  twAppendEvents(numberOfKeys: number, ...keysAndArgs: Array<string | number>): Promise<number[]>;
  twClaimRun(marker: string, cancel: string, meta: string, log: string, runToken: string, now: number, ttl: number): Promise<number>;
  twLogBounds(log: string, meta: string): Promise<[Array<[string, string[]]>, Array<[string, string[]]>, string | null]>;
  twAppendTerminal(
    log: string,
    marker: string,
    meta: string,
    generationId: string,
    body: string,
    channel: string,
    maxEvents: number,
    ttl: number,
    status: GenerationStatus,
    now: number,
    writeToken: string,
    runToken: string,
    publish: PublishCommand,
  ): Promise<number>;
}

/** How the append scripts publish on the live channel: SPUBLISH for sharded pub/sub on a Cluster. */
export type PublishCommand = 'PUBLISH' | 'SPUBLISH';

/**
 * What one append did: written; refused because the generation ended; refused because another run owns it
 * now; not written because the seq before it is missing from the log (`gap`: send that one first).
 */
export type AppendResult = 'written' | 'ended' | 'lost' | 'gap';

/** What the pre-flight of a run found: nothing to do, a cancel to honour, or the run may go ahead after `lastSeq`. */
export type RunClaim = { kind: 'ended' } | { kind: 'cancel-requested' } | { kind: 'claimed'; lastSeq: number };

/**
 * An appender sets its log's TTL on its first append and again once this share of the TTL has passed,
 * not on every append (an `EXPIRE` per event was a fifth of the append script's time in Redis: bench/README.md).
 * So a running generation's log expires between 0.9 and 1 TTL after its latest event.
 */
const TTL_RENEW_SHARE = 0.1;

const APPEND_RESULT: Record<number, AppendResult> = { 1: 'written', 0: 'ended', [-1]: 'lost', [-2]: 'gap' };
/** The batched script's code for an id already held by a different entry: two writers for one generation. */
const ID_TAKEN = -3;

/** An event and the exact JSON it travels as (serialised once, by its writer). */
export interface LoggedEvent {
  event: StreamEvent;
  json: string;
}

const TERMINAL_STATUS: Record<TerminalEventBody['type'], GenerationStatus> = {
  done: 'done',
  error: 'error',
  cancelled: 'cancelled',
};

/**
 * The per-generation event log (a Redis Stream whose entry ids are `<seq>-0`)
 * plus its live pub/sub channel (sharded on a Cluster: see `usesShardedPubSub`). Writers: the worker running the generation,
 * and whoever ends a generation that never ran. Readers: api replay.
 */
export class EventLog {
  /** Commands to send straight, not auto-pipelined: a batch of a turn's appends is one call already. */
  static readonly unpipelinedCommands = ['twAppendEvents'] as const;

  private readonly redis: Redis & EventLogCommands;
  private readonly batcher: EventAppendBatcher;
  private readonly batchAppends: boolean;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly limits: { ttlSeconds: number; maxEvents: number; finishedTtlSeconds?: number },
    private readonly publish: PublishCommand = 'PUBLISH',
  ) {
    if (!('twAppendEvent' in redis)) {
      redis.defineCommand('twAppendEvent', { numberOfKeys: 3, lua: APPEND_EVENT_LUA });
      redis.defineCommand('twClaimRun', { numberOfKeys: 4, lua: CLAIM_RUN_LUA });
      redis.defineCommand('twAppendTerminal', { numberOfKeys: 3, lua: APPEND_TERMINAL_LUA });
      // Keys vary with the batch: the caller passes their number first.
      redis.defineCommand('twAppendEvents', { lua: APPEND_EVENTS_LUA });
    }
    if (!('twLogBounds' in redis)) redis.defineCommand('twLogBounds', { numberOfKeys: 2, lua: LOG_BOUNDS_LUA });
    this.redis = redis as Redis & EventLogCommands;
    this.batcher = new EventAppendBatcher((batch) => this.sendBatch(batch));
    // On a Cluster the generations of one turn live on different slots: each append is its own script
    // call (auto-pipelined), settled on its own, so a shard's failover holds up only its generations.
    this.batchAppends = (redis as { isCluster?: boolean }).isCluster !== true;
  }

  /** Runs `callback` at the end of this event-loop turn, just before the turn's appends go to Redis. */
  atTurnEnd(callback: () => void): void {
    this.batcher.atTurnEnd(callback);
  }

  /**
   * The one pre-flight of a run, before any upstream call: refuses an ended generation, reports a
   * requested cancel, otherwise marks the generation running and owned by `runToken` (an earlier
   * run's writes are refused from then on) and returns the log's top seq.
   */
  async claimRun(generationId: string, runToken: string): Promise<RunClaim> {
    const k = this.keys;
    const top = await this.redis.twClaimRun(
      k.terminalMarker(generationId),
      k.cancelRequest(generationId),
      k.meta(generationId),
      k.eventLog(generationId),
      runToken,
      Date.now(),
      this.limits.ttlSeconds,
    );
    if (top === -1) return { kind: 'ended' };
    if (top === -2) return { kind: 'cancel-requested' };
    return { kind: 'claimed', lastSeq: top };
  }

  /**
   * The appender of one generation's non-terminal events, each with the writer's own seq.
   * Not awaited per token by the worker: commands on one connection keep their order.
   * `runToken` is the run that claimed the generation ('' for a writer that claimed none).
   * Keys and the JSON head are built once per generation, not once per token.
   */
  appender(generationId: string, runToken = ''): (seq: number, body: StreamEventBody) => Promise<AppendResult> {
    const { eventLog, terminalMarker, meta, liveChannel } = this.keys;
    const target: AppendTarget = { log: eventLog(generationId), marker: terminalMarker(generationId), meta: meta(generationId), channel: liveChannel(generationId), runToken };
    const head = `{"jobId":${JSON.stringify(generationId)},"seq":`;
    const { ttlSeconds } = this.limits;
    const renewEveryMs = ttlSeconds * 1000 * TTL_RENEW_SHARE;
    let renewedAt = -Infinity;
    return async (seq, body) => {
      // The same JSON as JSON.stringify({ jobId, seq, ...body }), without copying body per token.
      const json = `${head}${seq},${JSON.stringify(body).slice(1)}`;
      const now = performance.now();
      const ttl = now - renewedAt >= renewEveryMs ? ttlSeconds : '';
      if (ttl !== '') renewedAt = now;
      let code: number;
      try {
        code = this.batchAppends ? await this.batcher.append(target, `${seq}-0`, json, ttl) : await this.appendOne(target, `${seq}-0`, json, ttl);
      } catch (error) {
        if (ttl !== '') renewedAt = -Infinity; // the TTL may not be set: the next append asks again
        throw error;
      }
      if (ttl !== '' && code !== 1) renewedAt = -Infinity;
      if (code === ID_TAKEN) throw new Error(`seq ${seq} of generation ${generationId} is already taken by a different event: two writers for one generation`);
      return APPEND_RESULT[code]!;
    };
  }

  /** One script call for a turn's appends, every generation together. */
  private sendBatch(batch: ReadonlyArray<{ target: AppendTarget; id: string; json: string; ttl: number | '' }>): Promise<number[]> {
    const writers = new Map<AppendTarget, number>();
    const keys: string[] = [];
    const args: Array<string | number> = [this.limits.maxEvents, this.publish];
    for (const { target, id, json, ttl } of batch) {
      let writer = writers.get(target);
      if (writer === undefined) {
        keys.push(target.log, target.marker, target.meta);
        writer = keys.length / 3;
        writers.set(target, writer);
      }
      args.push(writer, id, json, target.channel, target.runToken, ttl);
    }
    return this.redis.twAppendEvents(keys.length, ...keys, ...args);
  }

  /** One append as its own script call (a Cluster). */
  private async appendOne(t: AppendTarget, id: string, json: string, ttl: number | ''): Promise<number> {
    try {
      return await this.redis.twAppendEvent(t.log, t.marker, t.meta, id, json, t.channel, this.limits.maxEvents, ttl, t.runToken, this.publish);
    } catch (error) {
      // The single-event script raises for an id held by a different entry; the batched one reports it as a code.
      if (error instanceof Error && /equal or smaller than the target stream top item/.test(error.message)) return ID_TAKEN;
      throw error;
    }
  }

  /**
   * Appends the terminal event unless one exists (or, given `runToken`, unless another run owns the
   * generation). Returns its seq, or undefined if another writer ended it first.
   */
  async appendTerminal(generationId: string, body: TerminalEventBody, runToken = ''): Promise<number | undefined> {
    const k = this.keys;
    const seq = await this.redis.twAppendTerminal(
      k.eventLog(generationId),
      k.terminalMarker(generationId),
      k.meta(generationId),
      generationId,
      JSON.stringify(body),
      k.liveChannel(generationId),
      this.limits.maxEvents,
      this.limits.finishedTtlSeconds ?? this.limits.ttlSeconds,
      TERMINAL_STATUS[body.type],
      Date.now(),
      randomUUID(), // tells a resend of this write from another writer's
      runToken,
      this.publish,
    );
    return seq > 0 ? seq : undefined;
  }

  /**
   * Events with seq > afterSeq, in order, each with the JSON it was logged as; at most `count`
   * of them when given (a replay reads the log in pages of this size, never all at once).
   */
  async readAfter(generationId: string, afterSeq: number, count?: number): Promise<LoggedEvent[]> {
    const log = this.keys.eventLog(generationId);
    const entries = count === undefined ? await this.redis.xrange(log, `${afterSeq + 1}-0`, '+') : await this.redis.xrange(log, `${afterSeq + 1}-0`, '+', 'COUNT', count);
    return entries.map(([, fields]) => parseEntry(fields));
  }

  /**
   * The oldest seq still in the log, its newest event (both undefined for a missing or empty log) and
   * the generation's status, read at one instant (a resume tells "expired" from "not started" by it).
   */
  async bounds(generationId: string): Promise<{ firstSeq?: number; last?: LoggedEvent; status?: GenerationStatus }> {
    // One script, not a MULTI: as atomic, and auto-pipelined with the turn's other commands (every stream opens with it).
    const [first, last, status] = await this.redis.twLogBounds(this.keys.eventLog(generationId), this.keys.meta(generationId));
    return {
      firstSeq: first[0] ? Number.parseInt(first[0][0], 10) : undefined,
      last: last[0] ? parseEntry(last[0][1]) : undefined,
      status: (status ?? undefined) as GenerationStatus | undefined,
    };
  }

  /** The highest seq written so far (0 for an empty log). */
  async lastSeq(generationId: string): Promise<number> {
    const top = await this.redis.xrevrange(this.keys.eventLog(generationId), '+', '-', 'COUNT', 1);
    return top.length ? Number.parseInt(top[0]![0], 10) : 0;
  }
}

function parseEntry(fields: string[]): LoggedEvent {
  const json = fields[1]!;
  return { event: JSON.parse(json) as StreamEvent, json };
}
