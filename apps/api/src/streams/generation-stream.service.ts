import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { isTerminalEvent, type RedisKeys, type StreamEvent } from '@tokenwire/contracts';
import { EventLog, LOGGER, REDIS_CLIENT, REDIS_KEYS, TokenwireMetrics, watchRedisErrors, type LoggedEvent, type Logger } from '@tokenwire/core';

/** Receives a generation's events in seq order, each exactly once, ending with the terminal event. */
export type StreamListener = (event: StreamEvent, json: string) => void;

/** One listener's view of one generation: replay, then live, with no gap and no duplicate. */
export class GenerationSubscription {
  /** Events that arrived live while the replay was being read; null once live. */
  private pending: LoggedEvent[] | null = [];
  private closed = false;
  private readonly closeHandlers: Array<() => void> = [];

  constructor(
    readonly generationId: string,
    /** Highest seq delivered so far (starts at the client's `afterSeq`). */
    public lastSeq: number,
    private readonly listener: StreamListener,
    private readonly onClose: (subscription: GenerationSubscription) => void,
    private readonly fillGap: (subscription: GenerationSubscription) => void,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Called for every live message of the channel. */
  receive(logged: LoggedEvent): void {
    if (this.pending) this.pending.push(logged);
    else if (logged.event.seq > this.lastSeq + 1) {
      // A live message skipped some seq (lost during a Redis reconnect): re-read the log.
      this.pending = [logged];
      this.fillGap(this);
    } else this.deliver(logged);
  }

  /** Re-reads the log after a reconnect: messages published while disconnected never arrive live. */
  resync(): void {
    if (this.pending || this.closed) return;
    this.pending = [];
    this.fillGap(this);
  }

  /** Delivers `replay` then whatever arrived meanwhile, and goes live. */
  catchUp(replay: LoggedEvent[]): void {
    for (const logged of replay) this.deliver(logged);
    const buffered = this.pending ?? [];
    this.pending = null;
    for (const logged of buffered) this.deliver(logged);
  }

  /** Runs `handler` once when the subscription closes (terminal event delivered, or closed by its owner). */
  onClosed(handler: () => void): void {
    if (this.closed) handler();
    else this.closeHandlers.push(handler);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = null;
    this.onClose(this);
    for (const handler of this.closeHandlers) handler();
  }

  private deliver({ event, json }: LoggedEvent): void {
    if (this.closed || event.seq <= this.lastSeq) return;
    this.lastSeq = event.seq;
    this.listener(event, json);
    if (isTerminalEvent(event)) this.close();
  }
}

interface ChannelEntry {
  generationId: string;
  subscriptions: Set<GenerationSubscription>;
  subscribed: Promise<unknown>;
}

/**
 * Live delivery for this api process: ONE Redis subscriber connection and a
 * local map channel → subscriptions. A channel is subscribed on its first local
 * listener and unsubscribed on its last, so thousands of streams share one connection.
 *
 * The seam: subscribe to the live channel first (buffering), then read the log
 * from afterSeq+1, deliver it, then drain the buffer skipping seqs already delivered.
 */
@Injectable()
export class GenerationStreamService implements OnModuleInit, OnApplicationShutdown {
  private subscriber!: Redis;
  private readonly channels = new Map<string, ChannelEntry>();
  /** UNSUBSCRIBE commands in flight, so a NUMSUB issued after them does not count this process. */
  private readonly unsubscribing = new Map<string, Promise<unknown>>();
  /** Test hook: runs between the live subscribe and the log read (to force the seam race). */
  beforeReplay?: (generationId: string) => Promise<void>;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly eventLog: EventLog,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly metrics: TokenwireMetrics,
  ) {}

  onModuleInit(): void {
    this.subscriber = watchRedisErrors(this.redis.duplicate({ connectionName: 'tokenwire-api-live', enableAutoPipelining: false }), this.logger);
    this.subscriber.on('message', (channel: string, json: string) => this.onMessage(channel, json));
    // After a reconnect, what was published meanwhile is only in the logs. ioredis re-subscribes on
    // its own, but only after emitting 'ready': subscribe again and wait, then re-read, so nothing
    // published between the re-read and the re-subscribe can slip through.
    let connectedBefore = false;
    this.subscriber.on('ready', () => {
      if (connectedBefore) this.resyncAfterReconnect().catch((error: unknown) => this.logger.error({ err: error }, 'cannot re-read the event logs after a reconnect'));
      connectedBefore = true;
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.closeAll();
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
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

  /** Streams the generation's events after `afterSeq` to `listener`; resolves once the replay was delivered. */
  async subscribe(generationId: string, afterSeq: number, listener: StreamListener): Promise<GenerationSubscription> {
    const channel = this.keys.liveChannel(generationId);
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = { generationId, subscriptions: new Set(), subscribed: this.subscriber.subscribe(channel) };
      this.channels.set(channel, entry);
    }
    const subscription = new GenerationSubscription(
      generationId,
      afterSeq,
      listener,
      (s) => this.release(channel, s),
      (s) => void this.replay(s).catch(() => undefined), // logged in replay
    );
    entry.subscriptions.add(subscription);
    this.metrics.activeStreams.inc();
    try {
      await entry.subscribed;
      if (this.beforeReplay) await this.beforeReplay(generationId);
    } catch (error) {
      subscription.close();
      throw error;
    }
    await this.replay(subscription);
    return subscription;
  }

  /** Local listeners of a generation in this process. */
  localListenerCount(generationId: string): number {
    return this.channels.get(this.keys.liveChannel(generationId))?.subscriptions.size ?? 0;
  }

  /** Listeners of a generation in all api processes (Redis counts one per subscribed process). */
  async subscriberProcessCount(generationId: string): Promise<number> {
    const channel = this.keys.liveChannel(generationId);
    await this.unsubscribing.get(channel);
    const reply = (await this.redis.pubsub('NUMSUB', channel)) as [string, number];
    return Number(reply[1]);
  }

  private async resyncAfterReconnect(): Promise<void> {
    const channels = [...this.channels.keys()];
    this.logger.warn({ channels: channels.length }, 'live connection re-established; re-reading event logs');
    try {
      if (channels.length) await this.subscriber.subscribe(...channels);
    } catch (error) {
      this.logger.error({ err: error }, 'cannot re-subscribe after a reconnect');
      return; // the next 'ready' tries again
    }
    for (const entry of this.channels.values()) for (const subscription of entry.subscriptions) subscription.resync();
  }

  private async replay(subscription: GenerationSubscription): Promise<void> {
    try {
      const events = await this.eventLog.readAfter(subscription.generationId, subscription.lastSeq);
      subscription.catchUp(events);
    } catch (error) {
      this.logger.error({ err: error, jobId: subscription.generationId }, 'cannot read the event log; closing the subscription');
      subscription.close();
      throw error;
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
    const logged = { event, json };
    for (const subscription of entry.subscriptions) subscription.receive(logged);
  }

  private release(channel: string, subscription: GenerationSubscription): void {
    const entry = this.channels.get(channel);
    if (!entry?.subscriptions.delete(subscription)) return;
    this.metrics.activeStreams.dec();
    if (entry.subscriptions.size > 0) return;
    this.channels.delete(channel);
    const done = this.subscriber
      .unsubscribe(channel)
      .catch((error: unknown) => this.logger.warn({ err: error, channel }, 'unsubscribe failed'))
      .finally(() => {
        if (this.unsubscribing.get(channel) === done) this.unsubscribing.delete(channel);
      });
    this.unsubscribing.set(channel, done);
  }
}
