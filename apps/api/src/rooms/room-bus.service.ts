import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@tokenwire/contracts';
import { LOGGER, REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, watchRedisErrors, type Logger, type TokenwireConfig } from '@tokenwire/core';

export interface RoomAddress {
  tenantId: string;
  conversationId: string;
}

/**
 * Called in every api process that has members in the room when a generation starts there;
 * `recovered`: found by re-reading the room after the bus reconnected (the announcement may have been missed).
 */
export type RoomGenerationHandler = (room: RoomAddress, jobId: string, recovered: boolean) => void;

/**
 * Conversation rooms across api processes. A room's current generation is a Redis
 * key (so late joiners find it); its start is announced on the room's channel, to
 * which a process subscribes while it has local members. Tokens themselves do not
 * travel here: members subscribe to the generation's own channel.
 */
@Injectable()
export class RoomBusService implements OnModuleInit, OnApplicationShutdown {
  private subscriber!: Redis;
  private readonly rooms = new Map<string, RoomAddress>();
  private handler: RoomGenerationHandler = () => undefined;
  /** Test hook: runs between subscribing to a room and the caller's read of its current generation (to force that race). */
  afterListen?: (room: RoomAddress) => Promise<void>;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onModuleInit(): void {
    this.subscriber = watchRedisErrors(this.redis.duplicate({ connectionName: 'tokenwire-api-rooms', enableAutoPipelining: false }), this.logger);
    this.subscriber.on('message', (channel: string, jobId: string) => {
      const room = this.rooms.get(channel);
      if (room) this.handler(room, jobId, false);
    });
    // An announcement published while this connection was down is lost. After a reconnect, subscribe
    // again (waiting for it, as ioredis re-subscribes only after 'ready'), then re-read every room.
    let connectedBefore = false;
    this.subscriber.on('ready', () => {
      if (connectedBefore) this.rereadAfterReconnect().catch((error: unknown) => this.logger.error({ err: error }, 'cannot re-read the rooms after a reconnect'));
      connectedBefore = true;
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }

  onGeneration(handler: RoomGenerationHandler): void {
    this.handler = handler;
  }

  /** Listen for the room's generations (idempotent; call when a local socket joins). */
  async listen(room: RoomAddress): Promise<void> {
    const channel = this.keys.roomChannel(room.tenantId, room.conversationId);
    if (this.rooms.has(channel)) return;
    this.rooms.set(channel, room);
    await this.subscriber.subscribe(channel);
    if (this.afterListen) await this.afterListen(room);
  }

  /** Rooms this process listens to. */
  listened(): RoomAddress[] {
    return [...this.rooms.values()];
  }

  /** Stop listening (call when the room's last local socket left). */
  async forget(room: RoomAddress): Promise<void> {
    const channel = this.keys.roomChannel(room.tenantId, room.conversationId);
    if (this.rooms.delete(channel)) await this.subscriber.unsubscribe(channel);
  }

  async announce(room: RoomAddress, jobId: string): Promise<void> {
    await this.redis
      .multi()
      .set(this.keys.roomGeneration(room.tenantId, room.conversationId), jobId, 'EX', this.config.generations.ttlSeconds)
      .publish(this.keys.roomChannel(room.tenantId, room.conversationId), jobId)
      .exec();
  }

  currentGeneration(room: RoomAddress): Promise<string | null> {
    return this.redis.get(this.keys.roomGeneration(room.tenantId, room.conversationId));
  }

  private async rereadAfterReconnect(): Promise<void> {
    const channels = [...this.rooms.keys()];
    this.logger.warn({ rooms: channels.length }, 'room bus re-connected; re-reading rooms');
    try {
      if (channels.length) await this.subscriber.subscribe(...channels);
      for (const room of this.rooms.values()) {
        const jobId = await this.currentGeneration(room);
        if (jobId) this.handler(room, jobId, true);
      }
    } catch (error) {
      this.logger.error({ err: error }, 'cannot re-read rooms after a reconnect'); // the next 'ready' tries again
    }
  }
}
