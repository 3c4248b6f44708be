import type { Redis } from 'ioredis';
import type { Logger } from '@tokenwire/core';

interface QueuedChange {
  kind: 'subscribe' | 'unsubscribe';
  channel: string;
  resolve(reply: unknown): void;
  reject(error: unknown): void;
}

export interface LiveChannelHandlers {
  /** One message on a subscribed channel. */
  message(channel: string, message: string): void;
  /** The channels to subscribe again after a reconnect or failover (every channel still wanted). */
  channels(): string[];
  /** The channels are subscribed again: what was published while they were not is only in the event logs. */
  resubscribed(): void;
}

/**
 * The api's connection to generations' live channels, classic or sharded.
 *
 * Classic (standalone, Sentinel, or a Cluster with `redis.clusterPubSub: classic`): SUBSCRIBE on one
 * connection. ioredis re-subscribes after a reconnect only after emitting 'ready'; so on 'ready' the
 * channels are subscribed again here (and awaited) before `resubscribed`.
 *
 * Sharded (a Cluster): SSUBSCRIBE, which ioredis routes to one subscriber connection per master that
 * owns a subscribed channel's slot (`shardedSubscribers`). When the slots map changes (a failover, a
 * resharding, a master's subscriber connection lost) it replaces those connections and emits
 * 'subscribersReady' after re-issuing the SSUBSCRIBEs without waiting for them; so here every channel
 * is subscribed again and awaited (SSUBSCRIBE of a channel already subscribed changes nothing) before
 * `resubscribed`. While a master is down ioredis emits 'subscribersReady' every few milliseconds (each
 * failed connection refreshes the slots map), so attempts are coalesced: at most one in flight, the next
 * 100 ms after a request; one that fails (the new master not reachable yet) is tried again after a
 * back-off (250 ms doubling to 5 s).
 */
export class LiveChannelSubscriber {
  /** Classic SUBSCRIBE/UNSUBSCRIBE requests of this event-loop turn, in order, sent together at its end. */
  private queued: QueuedChange[] = [];
  private retryTimer?: NodeJS.Timeout;
  private attempting = false;
  private requestedAgain = false;
  private closed = false;

  constructor(
    private readonly connection: Redis,
    private readonly sharded: boolean,
    private readonly logger: Logger,
  ) {}

  start(handlers: LiveChannelHandlers): void {
    if (this.sharded) {
      this.connection.on('smessage', (channel: string, message: string) => handlers.message(channel, message));
      this.connection.on('subscribersReady', () => this.requestResubscribe(handlers));
      return;
    }
    this.connection.on('message', (channel: string, message: string) => handlers.message(channel, message));
    let connectedBefore = false;
    this.connection.on('ready', () => {
      if (connectedBefore) this.requestResubscribe(handlers);
      connectedBefore = true;
    });
  }

  subscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.connection.ssubscribe(channel) : this.queue('subscribe', channel);
  }

  unsubscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.connection.sunsubscribe(channel) : this.queue('unsubscribe', channel);
  }

  /**
   * Classic: the changes of one event-loop turn go out as one command per run of the same kind, in order
   * (`SUBSCRIBE a b c`). ioredis does not auto-pipeline (un)subscribes, and a burst of streams opening or
   * ending together otherwise costs a write syscall each. Sharded stays one command per channel: the
   * channels of one SSUBSCRIBE must share a slot.
   */
  private queue(kind: QueuedChange['kind'], channel: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (!this.queued.length) setImmediate(() => this.flush());
      this.queued.push({ kind, channel, resolve, reject });
    });
  }

  private flush(): void {
    const queued = this.queued;
    this.queued = [];
    for (let start = 0, end = 0; start < queued.length; start = end) {
      const kind = queued[start]!.kind;
      while (end < queued.length && queued[end]!.kind === kind) end++;
      const run = queued.slice(start, end);
      const channels = run.map((change) => change.channel);
      const sent = kind === 'subscribe' ? this.connection.subscribe(...channels) : this.connection.unsubscribe(...channels);
      sent.then(
        (reply) => run.forEach((change) => change.resolve(reply)),
        (error: unknown) => run.forEach((change) => change.reject(error)),
      );
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.connection.quit().catch(() => this.connection.disconnect());
  }

  /** Schedules one re-subscribe attempt (none if one is already scheduled). */
  private requestResubscribe(handlers: LiveChannelHandlers, delayMs = 100, retryDelayMs = 250): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.resubscribe(handlers, retryDelayMs);
    }, delayMs);
    this.retryTimer.unref();
  }

  private resubscribe(handlers: LiveChannelHandlers, retryDelayMs: number): void {
    if (this.attempting) {
      this.requestedAgain = true;
      return;
    }
    const channels = handlers.channels();
    if (this.closed || !channels.length) return;
    this.attempting = true;
    this.requestedAgain = false;
    this.logger.warn({ channels: channels.length, sharded: this.sharded }, 'live connection re-established; re-subscribing and re-reading event logs');
    // Sharded: one SSUBSCRIBE per channel, since one command's channels must share a slot.
    const subscribed = this.sharded ? Promise.all(channels.map((channel) => this.connection.ssubscribe(channel))) : this.connection.subscribe(...channels);
    subscribed
      .then(
        () => {
          handlers.resubscribed();
          return true;
        },
        (error: unknown) => {
          this.logger.error({ err: error, retryInMs: retryDelayMs }, 'cannot re-subscribe the live channels');
          return false;
        },
      )
      .then((done) => {
        this.attempting = false;
        if (!done) this.requestResubscribe(handlers, retryDelayMs, Math.min(retryDelayMs * 2, 5000));
        else if (this.requestedAgain) this.requestResubscribe(handlers);
      })
      .catch((error: unknown) => this.logger.error({ err: error }, 'cannot re-read the event logs after re-subscribing'));
  }
}
