import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { controlMessageSchema, type RedisKeys } from '@tokenwire/contracts';
import { LOGGER, REDIS_CLIENT, REDIS_KEYS, watchRedisErrors, type Logger } from '@tokenwire/core';
import { GenerationsProcessor } from '../generations/generations.processor';

/**
 * Every worker listens on the control channel; the one holding the job aborts it
 * through BullMQ's own cancellation (the processor's AbortSignal).
 */
@Injectable()
export class CancelListenerService implements OnModuleInit, OnApplicationShutdown {
  private subscriber?: Redis;

  constructor(
    private readonly processor: GenerationsProcessor,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    this.subscriber = watchRedisErrors(this.redis.duplicate({ connectionName: 'tokenwire-worker-control' }), this.logger);
    this.subscriber.on('message', (_channel: string, message: string) => this.handle(message));
    await this.subscriber.subscribe(this.keys.controlChannel());
  }

  private handle(message: string): void {
    let parsed;
    try {
      parsed = controlMessageSchema.safeParse(JSON.parse(message));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      this.logger.warn({ message: message.slice(0, 200) }, 'ignoring a malformed control message');
      return;
    }
    const { generationId, reason } = parsed.data;
    if (this.processor.cancel(generationId, reason ?? 'cancelled by request')) {
      this.logger.info({ jobId: generationId }, 'cancel delivered to running job');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscriber?.quit().catch(() => this.subscriber?.disconnect());
  }
}
