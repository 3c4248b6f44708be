import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  type GenerationStatus,
  type RedisKeys,
  type StreamEvent,
  type StreamEventBody,
  type TerminalEventBody,
} from '@tokenwire/contracts';
import { APPEND_EVENT_LUA, APPEND_TERMINAL_LUA } from './event-log.scripts';

interface EventLogCommands {
  twAppendEvent(log: string, marker: string, id: string, json: string, channel: string, maxEvents: number, ttl: number): Promise<number>;
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
  ): Promise<number>;
}

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
 * plus its live pub/sub channel. Writers: the worker running the generation,
 * and whoever ends a generation that never ran. Readers: api replay.
 */
export class EventLog {
  private readonly redis: Redis & EventLogCommands;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly limits: { ttlSeconds: number; maxEvents: number },
  ) {
    if (!('twAppendEvent' in redis)) {
      redis.defineCommand('twAppendEvent', { numberOfKeys: 2, lua: APPEND_EVENT_LUA });
      redis.defineCommand('twAppendTerminal', { numberOfKeys: 3, lua: APPEND_TERMINAL_LUA });
    }
    this.redis = redis as Redis & EventLogCommands;
  }

  /**
   * The appender of one generation's non-terminal events, each with the writer's own seq.
   * Not awaited per token by the worker: commands on one connection keep their order.
   * Its promise resolves false when the generation has already ended.
   * Keys and the JSON head are built once per generation, not once per token.
   */
  appender(generationId: string): (seq: number, body: StreamEventBody) => Promise<boolean> {
    const { eventLog, terminalMarker, liveChannel } = this.keys;
    const [log, marker, channel] = [eventLog(generationId), terminalMarker(generationId), liveChannel(generationId)];
    const head = `{"jobId":${JSON.stringify(generationId)},"seq":`;
    const { maxEvents, ttlSeconds } = this.limits;
    return async (seq, body) => {
      // The same JSON as JSON.stringify({ jobId, seq, ...body }), without copying body per token.
      const json = `${head}${seq},${JSON.stringify(body).slice(1)}`;
      return (await this.redis.twAppendEvent(log, marker, `${seq}-0`, json, channel, maxEvents, ttlSeconds)) === 1;
    };
  }

  /** Appends the terminal event unless one exists. Returns its seq, or undefined if another writer ended it first. */
  async appendTerminal(generationId: string, body: TerminalEventBody): Promise<number | undefined> {
    const k = this.keys;
    const seq = await this.redis.twAppendTerminal(
      k.eventLog(generationId),
      k.terminalMarker(generationId),
      k.meta(generationId),
      generationId,
      JSON.stringify(body),
      k.liveChannel(generationId),
      this.limits.maxEvents,
      this.limits.ttlSeconds,
      TERMINAL_STATUS[body.type],
      Date.now(),
      randomUUID(), // tells a resend of this write from another writer's
    );
    return seq > 0 ? seq : undefined;
  }

  /** Events with seq > afterSeq, in order, each with the JSON it was logged as. */
  async readAfter(generationId: string, afterSeq: number): Promise<LoggedEvent[]> {
    const entries = await this.redis.xrange(this.keys.eventLog(generationId), `${afterSeq + 1}-0`, '+');
    return entries.map(([, fields]) => {
      const json = fields[1]!;
      return { event: JSON.parse(json) as StreamEvent, json };
    });
  }

  /** The highest seq written so far (0 for an empty log). */
  async lastSeq(generationId: string): Promise<number> {
    const top = await this.redis.xrevrange(this.keys.eventLog(generationId), '+', '-', 'COUNT', 1);
    return top.length ? Number.parseInt(top[0]![0], 10) : 0;
  }
}
