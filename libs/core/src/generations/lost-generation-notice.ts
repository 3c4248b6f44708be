import type { Redis } from 'ioredis';
import type { ErrorEvent, RedisKeys, StreamEventBody } from '@tokenwire/contracts';
import type { PublishCommand } from '../events/event-log';

/**
 * The error a live reader gets when its generation's state is gone from Redis: meta and terminal
 * marker both missing before it ended (a failover whose promoted replica lacked the data, an
 * eviction, a FLUSHALL). Nothing can end such a generation through its log: the worker's appends are
 * refused (its run no longer matches the meta) and the reaper needs the meta. So the api makes this
 * error for each reader, as the seq after the last one that reader received.
 */
export function generationLostError(generationId: string): Extract<StreamEventBody, { type: 'error' }> {
  return {
    type: 'error',
    code: 'generation_lost',
    message: `generation '${generationId}' is gone from Redis before it ended (its state was lost: a failover that lost data, an eviction or a flush); it cannot end or be resumed: submit the request again`,
    retryable: true,
  };
}

/** True for the worker's notice on a live channel (never delivered as such: the api checks and makes its own). */
export function isLostGenerationNotice(event: { type: string; code?: string }): event is ErrorEvent {
  return event.type === 'error' && event.code === 'generation_lost';
}

/**
 * Publishes `generationLostError` on the live channel only when meta and terminal marker are both missing,
 * checked in the same script, so a healthy generation never gets one. Writes no key: a re-created
 * log or meta would be a generation nobody owns.
 * KEYS: 1 meta hash, 2 terminal marker   ARGV: 1 live channel, 2 event JSON, 3 `SPUBLISH` or PUBLISH
 */
const ANNOUNCE_IF_GONE_LUA = `
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call(ARGV[3] == 'SPUBLISH' and 'SPUBLISH' or 'PUBLISH', ARGV[1], ARGV[2])
return 1
`;

interface NoticeCommands {
  twAnnounceIfGone(meta: string, marker: string, channel: string, json: string, publish: PublishCommand): Promise<number>;
}

/**
 * The worker's side of a lost generation: when Redis refuses a run's append as "lost" (the meta no longer
 * names this run), it asks here whether the generation's state is gone; if so, the live channel carries a
 * `generation_lost` notice, and every api process ends its readers at once (after checking for itself)
 * instead of at its next periodic check. Once per stopped run, never per token.
 */
export class LostGenerationNotice {
  private readonly redis: Redis & NoticeCommands;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly publish: PublishCommand,
  ) {
    if (!('twAnnounceIfGone' in redis)) redis.defineCommand('twAnnounceIfGone', { numberOfKeys: 2, lua: ANNOUNCE_IF_GONE_LUA });
    this.redis = redis as Redis & NoticeCommands;
  }

  /** Publishes the notice (as seq `seq`) if the generation's state is gone; true when it did. */
  async announceIfGone(generationId: string, seq: number): Promise<boolean> {
    const k = this.keys;
    const json = JSON.stringify({ jobId: generationId, seq, ...generationLostError(generationId) });
    return (await this.redis.twAnnounceIfGone(k.meta(generationId), k.terminalMarker(generationId), k.liveChannel(generationId), json, this.publish)) === 1;
  }
}
