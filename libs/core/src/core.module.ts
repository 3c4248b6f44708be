import { Global, Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG } from './config/config.tokens';
import type { TokenwireConfig } from './config/config.schema';
import { REDIS_CLIENT, REDIS_KEYS } from './redis/redis.tokens';
import { createRedisClient, usesShardedPubSub } from './redis/redis-client';
import { EventLog } from './events/event-log';
import { GenerationMetaStore } from './generations/generation-meta.store';
import { TenantAccounting } from './tenants/tenant-accounting';
import { GenerationFinisher } from './generations/generation-finisher';
import { LostGenerationNotice } from './generations/lost-generation-notice';
import { UnfinishedGenerations } from './generations/unfinished-generations';
import { TokenwireMetrics } from './metrics/metrics';
import { BatchStore } from './batches/batch-store';
import { LOGGER } from './logging/logger.tokens';
import type { Logger } from './logging/logger';

/** Logs a connection's errors (ioredis reconnects by itself); without a listener they surface as unhandled. */
export function watchRedisErrors<T extends Redis>(client: T, logger: Logger): T {
  const name = (client.options as { connectionName?: string } | undefined)?.connectionName ?? 'redis';
  client.on('error', (error: Error) => logger.warn({ connection: name, err: error.message }, 'redis connection error'));
  return client;
}

/** Closes the shared Redis connection when Nest shuts down. */
@Injectable()
class RedisShutdown implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly redis: Redis) {}
  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/**
 * What api and worker share: the validated config, the logger, one Redis
 * command connection, key builders, the event log and the generation meta store.
 */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: TokenwireConfig, logger: Logger, service: 'api' | 'worker'): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: TOKENWIRE_CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: TokenwireMetrics, useValue: new TokenwireMetrics(service, config.metrics.eventLoopResolutionMs) },
        { provide: REDIS_KEYS, useValue: redisKeys(config.redis.prefix) },
        {
          provide: REDIS_CLIENT,
          // Auto-pipelining sends the commands issued in one tick in one write. Not EventLog's batched appends:
          // each is already a turn's appends in one call, and a pipeline around one call costs about 25 µs of
          // CPU and waits for the previous pipeline's replies (bench/README.md, "What was changed").
          useFactory: () =>
            watchRedisErrors(
              createRedisClient(config.redis, { enableAutoPipelining: true, autoPipeliningIgnoredCommands: [...EventLog.unpipelinedCommands], connectionName: 'tokenwire' }),
              logger,
            ),
        },
        RedisShutdown,
        {
          provide: EventLog,
          inject: [REDIS_CLIENT, REDIS_KEYS],
          useFactory: (redis: Redis, keys: RedisKeys) => new EventLog(redis, keys, config.generations, usesShardedPubSub(config.redis) ? 'SPUBLISH' : 'PUBLISH'),
        },
        {
          provide: LostGenerationNotice,
          inject: [REDIS_CLIENT, REDIS_KEYS],
          useFactory: (redis: Redis, keys: RedisKeys) => new LostGenerationNotice(redis, keys, usesShardedPubSub(config.redis) ? 'SPUBLISH' : 'PUBLISH'),
        },
        {
          provide: TenantAccounting,
          inject: [REDIS_CLIENT, REDIS_KEYS, TokenwireMetrics],
          useFactory: (redis: Redis, keys: RedisKeys, metrics: TokenwireMetrics) => new TenantAccounting(redis, keys, metrics),
        },
        {
          provide: UnfinishedGenerations,
          inject: [REDIS_CLIENT, REDIS_KEYS],
          useFactory: (redis: Redis, keys: RedisKeys) => new UnfinishedGenerations(redis, keys),
        },
        {
          provide: GenerationFinisher,
          inject: [EventLog, TenantAccounting, UnfinishedGenerations],
          useFactory: (eventLog: EventLog, accounting: TenantAccounting, unfinished: UnfinishedGenerations) =>
            new GenerationFinisher(eventLog, accounting, unfinished, config, logger),
        },
        {
          provide: BatchStore,
          inject: [REDIS_CLIENT, REDIS_KEYS],
          useFactory: (redis: Redis, keys: RedisKeys) => new BatchStore(redis, keys, config.batches.ttlSeconds, config.batches.concurrency),
        },
        {
          provide: GenerationMetaStore,
          inject: [REDIS_CLIENT, REDIS_KEYS],
          useFactory: (redis: Redis, keys: RedisKeys) => new GenerationMetaStore(redis, keys, config.generations.ttlSeconds),
        },
      ],
      exports: [TOKENWIRE_CONFIG, LOGGER, TokenwireMetrics, REDIS_KEYS, REDIS_CLIENT, EventLog, LostGenerationNotice, GenerationMetaStore, TenantAccounting, GenerationFinisher, UnfinishedGenerations, BatchStore],
    };
  }
}
