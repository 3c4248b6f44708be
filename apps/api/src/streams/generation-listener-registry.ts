import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@tokenwire/contracts';
import type { Logger } from '@tokenwire/core';

/** How long a process's listener entry lives without renewal: a crashed process stops counting after this. */
export const LISTENER_ENTRY_TTL_MS = 30_000;
/** How often a process renews the entries of the generations it follows (a third of the TTL: two renewals may fail). */
export const LISTENER_RENEW_MS = 10_000;
/**
 * A generation followed for less than this is never taken for gone: the OpenAI route follows one as soon as
 * it is admitted, a moment before its meta is written (and a script's first EVALSHA may come back NOSCRIPT
 * and go again as EVAL, after a later EXISTS).
 */
const GONE_GRACE_MS = 5_000;

/**
 * Which api processes follow a generation live, in Redis, in the generation's own slot
 * (`keys.listeners`: member = process id, score = expiry). It replaces `PUBSUB NUMSUB`, which on a
 * Cluster counts only the node it reaches and never counts sharded subscribers, so the OpenAI
 * route's "does anyone else still read this?" is right on standalone, Sentinel and Cluster alike.
 *
 * Cost: three auto-pipelined commands (ZREMRANGEBYSCORE, ZADD, PEXPIRE) when a process starts following a generation, one ZREM when it stops,
 * and one renewal per followed generation every LISTENER_RENEW_MS. Entries are process-level
 * (local listeners are counted in the process), and expired members are ignored when counting,
 * so a process that died without cleaning up stops counting after LISTENER_ENTRY_TTL_MS.
 *
 * A renewal also sends one EXISTS of the generation's meta and terminal marker (one command: both read at
 * one instant). Neither exists only when its state is gone from Redis (a generation's meta has no TTL
 * until its terminal event, and both then keep the finished TTL): `gone` is told, so its readers end
 * plainly instead of waiting for ever. A renewal that fails (Redis unreachable, a failover) tells nothing,
 * and neither does a periodic one within GONE_GRACE_MS of following the generation.
 */
export class GenerationListenerRegistry {
  /** This api process, as a member of the listener sets. */
  readonly processId = randomUUID();
  /** Followed generations, and since when (ms). */
  private readonly followed = new Map<string, number>();
  private renewTimer?: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
    /** A followed generation's meta and terminal marker are both gone (see above). */
    private readonly gone: (generationId: string) => void,
  ) {}

  start(): void {
    this.renewTimer = setInterval(() => this.renewAll(), LISTENER_RENEW_MS);
    this.renewTimer.unref();
  }

  stop(): void {
    clearInterval(this.renewTimer);
  }

  /** This process follows the generation from now on (awaited before its listener reads, so another process sees it). */
  async add(generationId: string): Promise<void> {
    if (!this.followed.has(generationId)) this.followed.set(generationId, Date.now());
    await this.write(generationId);
  }

  /** This process no longer follows the generation. */
  async remove(generationId: string): Promise<void> {
    this.followed.delete(generationId);
    await this.redis.zrem(this.keys.listeners(generationId), this.processId);
  }

  /**
   * Renews the generation's entry now (a worker said its state is gone): `gone` is told if it is. No grace
   * here: a worker says so only after its run claimed the generation, which writes the meta if it is missing.
   */
  check(generationId: string): void {
    if (this.followed.has(generationId)) this.renew(generationId, 0);
  }

  /** Other api processes whose entry for the generation has not expired. */
  async otherProcesses(generationId: string): Promise<number> {
    const members = await this.redis.zrangebyscore(this.keys.listeners(generationId), Date.now(), '+inf');
    return members.filter((member) => member !== this.processId).length;
  }

  private async write(generationId: string): Promise<void> {
    const key = this.keys.listeners(generationId);
    const now = Date.now();
    // Plain commands, not a MULTI: they need no isolation (another process's entry landing between them
    // changes nothing), and plain commands are auto-pipelined with the rest of the turn's, where each
    // MULTI is a write of its own (a burst of streams opening paid one syscall each).
    await Promise.all([
      this.redis.zremrangebyscore(key, '-inf', now), // entries of processes that stopped renewing
      this.redis.zadd(key, now + LISTENER_ENTRY_TTL_MS, this.processId),
      this.redis.pexpire(key, LISTENER_ENTRY_TTL_MS),
    ]);
  }

  private renewAll(): void {
    for (const generationId of this.followed.keys()) this.renew(generationId);
  }

  /** Writes the entry again and asks whether the generation's state is still there (one auto-pipelined EXISTS more). */
  private renew(generationId: string, graceMs = GONE_GRACE_MS): void {
    const askedAt = Date.now();
    Promise.all([this.write(generationId), this.redis.exists(this.keys.meta(generationId), this.keys.terminalMarker(generationId))]).then(
      ([, present]) => {
        const since = this.followed.get(generationId);
        if (present === 0 && since !== undefined && askedAt - since >= graceMs) this.gone(generationId);
      },
      (error: unknown) => this.logger.warn({ err: error, jobId: generationId }, 'cannot renew a listener entry'),
    );
  }
}
