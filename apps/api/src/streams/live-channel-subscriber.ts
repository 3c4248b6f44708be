import type { Redis } from 'ioredis';
import type { Logger } from '@tokenwire/core';

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
 * `resubscribed`. A subscribe that fails (the new master not reachable yet) waits for the next
 * 'subscribersReady', which ioredis emits after its next slots refresh.
 */
export class LiveChannelSubscriber {
  constructor(
    private readonly connection: Redis,
    private readonly sharded: boolean,
    private readonly logger: Logger,
  ) {}

  start(handlers: LiveChannelHandlers): void {
    if (this.sharded) {
      this.connection.on('smessage', (channel: string, message: string) => handlers.message(channel, message));
      this.connection.on('subscribersReady', () => this.resubscribe(handlers));
      return;
    }
    this.connection.on('message', (channel: string, message: string) => handlers.message(channel, message));
    let connectedBefore = false;
    this.connection.on('ready', () => {
      if (connectedBefore) this.resubscribe(handlers);
      connectedBefore = true;
    });
  }

  subscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.connection.ssubscribe(channel) : this.connection.subscribe(channel);
  }

  unsubscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.connection.sunsubscribe(channel) : this.connection.unsubscribe(channel);
  }

  async close(): Promise<void> {
    await this.connection.quit().catch(() => this.connection.disconnect());
  }

  private resubscribe(handlers: LiveChannelHandlers): void {
    const channels = handlers.channels();
    if (!channels.length) return;
    this.logger.warn({ channels: channels.length, sharded: this.sharded }, 'live connection re-established; re-subscribing and re-reading event logs');
    // Sharded: one SSUBSCRIBE per channel, since one command's channels must share a slot.
    const subscribed = this.sharded ? Promise.all(channels.map((channel) => this.connection.ssubscribe(channel))) : this.connection.subscribe(...channels);
    subscribed.then(
      () => handlers.resubscribed(),
      // The next 'ready' / 'subscribersReady' tries again.
      (error: unknown) => this.logger.error({ err: error }, 'cannot re-subscribe the live channels'),
    );
  }
}
