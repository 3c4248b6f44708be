import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { isTerminalEvent, type RedisKeys, type StreamEvent } from '@tokenwire/contracts';
import {
  EventLog,
  finishedTtlSeconds,
  LOGGER,
  type LoggedEvent,
  REDIS_CLIENT,
  REDIS_KEYS,
  TOKENWIRE_CONFIG,
  TokenwireMetrics,
  createLiveSubscriberClient,
  generationLostError,
  isLostGenerationNotice,
  usesShardedPubSub,
  watchRedisErrors,
  type Logger,
  type TokenwireConfig,
} from '@tokenwire/core';
import { ApiError } from '../common/api-error';
import { GenerationSubscription, type StreamListener, type StreamSink } from './generation-subscription';
import { GenerationListenerRegistry } from './generation-listener-registry';
import { LiveChannelSubscriber } from './live-channel-subscriber';

export { GenerationSubscription, type StreamListener, type StreamSink } from './generation-subscription';

/**
 * Events per replay page (one bounded XRANGE). About 40 KB of typical chunk events: small enough that
 * a page never trips the slow-consumer limit, large enough that a 20,000-event replay is 79 round trips.
 */
export const REPLAY_PAGE_EVENTS = 256;
/** How long a failed replay read is tried again before the subscription closes (a Cluster failover takes a few seconds). */
const READ_RETRY_MS = 15_000;
/**
 * A replay that finds the live stream ahead of the log waits this long before reading again (or less: a
 * live message wakes it), doubling up to the most; a failover's writer re-sends what the new master lacks within this.
 */
const CATCH_UP_FIRST_WAIT_MS = 10;
const CATCH_UP_MAX_WAIT_MS = 1_000;

interface ChannelEntry {
  generationId: string;
  subscriptions: Set<GenerationSubscription>;
  subscribed: Promise<unknown>;
}

/**
 * Live delivery for this api process: ONE Redis subscriber connection (on a Cluster with
 * sharded pub/sub, one per master that owns a subscribed channel) and a local map
 * channel → subscriptions. A channel is subscribed on its first local listener and
 * unsubscribed on its last, so thousands of streams share one connection.
 *
 * The seam: subscribe to the live channel first (buffering), then read the log
 * from afterSeq+1, deliver it, then drain the buffer skipping seqs already delivered.
 * The log is read in pages of REPLAY_PAGE_EVENTS, the next page once the client has read
 * the last (its sink drained), so a replay of any length holds one page in memory.
 */
@Injectable()
export class GenerationStreamService implements OnModuleInit, OnApplicationShutdown {
  private subscriber!: LiveChannelSubscriber;
  private readonly listeners: GenerationListenerRegistry;
  private readonly channels = new Map<string, ChannelEntry>();
  /** Test hook: runs between the live subscribe and the log read (to force the seam race). */
  beforeReplay?: (generationId: string) => Promise<void>;
  /** Test hook: runs before each replay page after the first is read (to trim a log under a replay). */
  beforeNextPage?: (generationId: string, afterSeq: number) => Promise<void>;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly eventLog: EventLog,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly metrics: TokenwireMetrics,
  ) {
    this.listeners = new GenerationListenerRegistry(redis, keys, logger, (generationId) => this.endLost(generationId));
  }

  onModuleInit(): void {
    this.listeners.start();
    const connection = watchRedisErrors(createLiveSubscriberClient(this.config.redis, 'tokenwire-api-live'), this.logger);
    this.subscriber = new LiveChannelSubscriber(connection, usesShardedPubSub(this.config.redis), this.logger);
    // After a reconnect or failover, what was published meanwhile is only in the logs: once the
    // channels are subscribed again, re-read, so nothing published in between can slip through.
    this.subscriber.start({
      message: (channel, json) => this.onMessage(channel, json),
      channels: () => [...this.channels.keys()],
      resubscribed: () => {
        for (const entry of this.channels.values()) for (const subscription of entry.subscriptions) subscription.resync();
      },
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.closeAll();
    this.listeners.stop();
    await this.subscriber.close();
  }

  /** Open subscriptions in this process (streams still being delivered). */
  activeSubscriptionCount(): number {
    let count = 0;
    for (const entry of this.channels.values()) count += entry.subscriptions.size;
    return count;
  }

  /** Closes every subscription; their owners end their responses through `onClosed`. */
  closeAll(): void {
    for (const entry of [...this.channels.values()]) for (const subscription of [...entry.subscriptions]) subscription.close();
  }

  /**
   * Opens a subscription to the generation's events after `afterSeq`, live first, then checks
   * that seq against the log (the resume rules in the README):
   * - past the last event written (ended or running): 400 naming `field` and the last seq;
   * - events after it trimmed (`generations.maxEvents`) or expired: 410 `stream_expired`;
   * - the terminal event already seen: the subscription comes back closed, with nothing to send.
   * Delivery begins with `start(sink)`.
   */
  async open(generationId: string, afterSeq: number, field = 'afterSeq'): Promise<GenerationSubscription> {
    const channel = this.keys.liveChannel(generationId);
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = { generationId, subscriptions: new Set(), subscribed: Promise.all([this.subscriber.subscribe(channel), this.listeners.add(generationId)]) };
      this.channels.set(channel, entry);
    }
    const subscription = new GenerationSubscription(
      generationId,
      afterSeq,
      (s) => this.release(channel, s),
      // replay logs and closes the subscription on failure; the catch keeps its rethrow from ending the process.
      (s) => {
        this.replay(s).catch(() => undefined);
      },
    );
    entry.subscriptions.add(subscription);
    this.metrics.activeStreams.inc();
    try {
      await entry.subscribed;
      if (this.beforeReplay) await this.beforeReplay(generationId);
      await this.checkResumable(generationId, afterSeq, field, subscription);
    } catch (error) {
      subscription.close();
      throw error;
    }
    return subscription;
  }

  /** Streams the generation's events after `afterSeq` to `listener` (no pacing: for listeners that buffer nothing). */
  async subscribe(generationId: string, afterSeq: number, listener: StreamListener): Promise<GenerationSubscription> {
    const subscription = await this.open(generationId, afterSeq);
    subscription.start({ write: listener, drained: () => Promise.resolve() });
    return subscription;
  }

  /** Local listeners of a generation in this process. */
  localListenerCount(generationId: string): number {
    return this.channels.get(this.keys.liveChannel(generationId))?.subscriptions.size ?? 0;
  }

  /** Other api processes with a listener of the generation (see GenerationListenerRegistry). */
  otherProcessesListening(generationId: string): Promise<number> {
    return this.listeners.otherProcesses(generationId);
  }

  private async checkResumable(generationId: string, afterSeq: number, field: string, subscription: GenerationSubscription): Promise<void> {
    const { firstSeq, last, status } = await this.eventLog.bounds(generationId);
    if (!last) {
      if (status === 'done' || status === 'error' || status === 'cancelled') throw this.expired(generationId, afterSeq, 'have expired');
      if (afterSeq > 0) throw pastTheEnd(field, afterSeq, generationId, 0, false);
      return;
    }
    const ended = isTerminalEvent(last.event);
    if (afterSeq > last.event.seq) throw pastTheEnd(field, afterSeq, generationId, last.event.seq, ended);
    if (afterSeq === last.event.seq && ended) subscription.close();
    else if (firstSeq !== undefined && firstSeq > afterSeq + 1) throw this.expired(generationId, afterSeq, `were trimmed (the oldest kept is seq ${firstSeq})`);
  }

  private expired(generationId: string, afterSeq: number, what: string): ApiError {
    const { maxEvents } = this.config.generations;
    const ttlSeconds = finishedTtlSeconds(this.config);
    return new ApiError(
      410,
      'stream_expired',
      `the events after seq ${afterSeq} of generation '${generationId}' ${what}: a log keeps about its last ${maxEvents} events, for ${ttlSeconds} s after its last event`,
    );
  }

  /** Reads the log after the subscription's last seq, a page at a time, until it meets the live stream. */
  private async replay(subscription: GenerationSubscription): Promise<void> {
    const { generationId } = subscription;
    let waitMs = CATCH_UP_FIRST_WAIT_MS;
    try {
      for (let pages = 0; !subscription.isClosed; pages++) {
        if (pages > 0 && this.beforeNextPage) await this.beforeNextPage(generationId, subscription.lastSeq);
        const page = await this.readPage(subscription);
        if (subscription.isClosed) return;
        const first = page[0]?.event.seq;
        if (first !== undefined && first > subscription.lastSeq + 1) {
          // Trimmed while this reader was behind: never a silent hole. A resume gets the 410.
          subscription.close(this.expired(generationId, subscription.lastSeq, `were trimmed (the oldest kept is seq ${first})`));
          return;
        }
        subscription.deliverReplay(page);
        if (page.length < REPLAY_PAGE_EVENTS) {
          if (subscription.goLive()) return;
          // The live stream is ahead of the log. A page that brought nothing means the log has yet to catch up:
          // read again on the next live message or after a back-off, not in a loop (8,000 reads a second).
          if (page.length === 0) {
            await subscription.liveOrTimeout(waitMs);
            waitMs = Math.min(waitMs * 2, CATCH_UP_MAX_WAIT_MS);
          } else waitMs = CATCH_UP_FIRST_WAIT_MS;
          continue;
        }
        if (!(await this.drainedInTime(subscription))) {
          subscription.close(slowConsumer(this.config.api.replayDrainTimeoutMs));
          return;
        }
      }
    } catch (error) {
      this.logger.error({ err: error, jobId: generationId }, 'cannot read the event log; closing the subscription');
      subscription.close();
    }
  }

  /**
   * One replay page. A read that fails is tried again for up to READ_RETRY_MS (a Cluster failover: the
   * slot moves, and ioredis hands a MOVED inside an auto-pipeline back instead of following it), so a
   * live reader rides out a failover instead of being closed; past that the error closes the subscription.
   */
  private async readPage(subscription: GenerationSubscription): Promise<LoggedEvent[]> {
    const deadline = Date.now() + READ_RETRY_MS;
    for (let delayMs = 50; ; delayMs = Math.min(delayMs * 2, 1000)) {
      try {
        return await this.eventLog.readAfter(subscription.generationId, subscription.lastSeq, REPLAY_PAGE_EVENTS);
      } catch (error) {
        if (subscription.isClosed || Date.now() + delayMs > deadline) throw error;
        this.logger.warn({ err: error, jobId: subscription.generationId, retryInMs: delayMs }, 'cannot read the event log; trying again');
        await sleep(delayMs);
      }
    }
  }

  /** True once the client read the last page; false when it did not within `api.replayDrainTimeoutMs`. */
  private async drainedInTime(subscription: GenerationSubscription): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.config.api.replayDrainTimeoutMs)));
    try {
      return await Promise.race([subscription.drained().then(() => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private onMessage(channel: string, json: string): void {
    const entry = this.channels.get(channel);
    if (!entry) return;
    let event: StreamEvent;
    try {
      event = JSON.parse(json) as StreamEvent;
    } catch (error) {
      this.logger.error({ err: error, channel }, 'malformed event on a live channel');
      return;
    }
    if (isLostGenerationNotice(event)) {
      // A worker found the state gone; checked here too (by the renewal's own read), never taken on trust.
      this.listeners.check(entry.generationId);
      return;
    }
    const logged = { event, json };
    for (const subscription of entry.subscriptions) subscription.receive(logged);
  }

  /**
   * The generation's state is gone from Redis (GenerationListenerRegistry): no worker or reaper can end it,
   * so each of its readers here gets `generation_lost` as its terminal event, the seq after its last.
   */
  private endLost(generationId: string): void {
    const entry = this.channels.get(this.keys.liveChannel(generationId));
    if (!entry) return;
    this.logger.error({ jobId: generationId, readers: entry.subscriptions.size }, 'generation gone from Redis before it ended (meta and terminal marker missing); ending its readers with generation_lost');
    const body = generationLostError(generationId);
    for (const subscription of [...entry.subscriptions]) subscription.end(body);
  }

  private release(channel: string, subscription: GenerationSubscription): void {
    const entry = this.channels.get(channel);
    if (!entry?.subscriptions.delete(subscription)) return;
    this.metrics.activeStreams.dec();
    if (entry.subscriptions.size > 0) return;
    this.channels.delete(channel);
    this.subscriber.unsubscribe(channel).catch((error: unknown) => this.logger.warn({ err: error, channel }, 'unsubscribe failed'));
    this.listeners.remove(entry.generationId).catch((error: unknown) => this.logger.warn({ err: error, jobId: entry.generationId }, 'cannot remove a listener entry'));
  }
}

function pastTheEnd(field: string, afterSeq: number, generationId: string, lastSeq: number, ended: boolean): ApiError {
  const which = ended ? 'its last event' : 'the last event written so far';
  return new ApiError(400, 'invalid_request', `${field}: ${afterSeq} is past ${which} of generation '${generationId}' (seq ${lastSeq})`, field);
}

function slowConsumer(waitedMs: number): ApiError {
  return new ApiError(429, 'slow_consumer', `the client read nothing of a replay page for ${waitedMs} ms; resume from the last seq received`);
}
