import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { revocationNoticeSchema, type RedisKeys, type RevocationNotice } from '@tokenwire/contracts';
import { LOGGER, REDIS_CLIENT, REDIS_KEYS, watchRedisErrors, type Logger } from '@tokenwire/core';

export type RevocationListener = (notice: RevocationNotice) => void;

/**
 * Tells every api process that keys stopped working (a key revoked, a tenant deleted), over one
 * Redis channel, so each drops the sockets that authenticated with them. HTTP needs no notice:
 * it reads the key from Redis on every request. Sockets also re-check their key on every event,
 * so a notice that is late or lost (a Redis reconnect) still cannot let an event through.
 */
@Injectable()
export class RevocationService implements OnModuleInit, OnApplicationShutdown {
  private subscriber!: Redis;
  private readonly listeners = new Set<RevocationListener>();

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    this.subscriber = watchRedisErrors(this.redis.duplicate({ connectionName: 'tokenwire-api-auth', enableAutoPipelining: false }), this.logger);
    this.subscriber.on('message', (_channel: string, message: string) => {
      const parsed = revocationNoticeSchema.safeParse(safeJson(message));
      if (!parsed.success) return this.logger.warn({ message: message.slice(0, 200) }, 'ignored a malformed revocation notice');
      for (const listener of this.listeners) listener(parsed.data);
    });
    await this.subscriber.subscribe(this.keys.authChannel());
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscriber?.quit().catch(() => this.subscriber.disconnect());
  }

  onRevocation(listener: RevocationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async publish(notice: RevocationNotice): Promise<void> {
    await this.redis.publish(this.keys.authChannel(), JSON.stringify(notice));
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
