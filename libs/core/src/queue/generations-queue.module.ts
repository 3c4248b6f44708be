import { BullModule } from '@nestjs/bullmq';
import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis, RedisOptions } from 'ioredis';
import { GENERATIONS_QUEUE, redisKeys } from '@tokenwire/contracts';
import type { TokenwireConfig } from '../config/config.schema';
import { bullConnection, closeBullConnection } from '../redis/redis-client';

const BULL_CONNECTION = Symbol('BULL_CONNECTION');

/** BullMQ leaves a connection instance it was handed (Cluster) open: close it with the app. */
@Injectable()
class BullConnectionCloser implements OnApplicationShutdown {
  constructor(@Inject(BULL_CONNECTION) private readonly connection: RedisOptions | Redis) {}
  async onApplicationShutdown(): Promise<void> {
    await closeBullConnection(this.connection);
  }
}

/** The BullMQ connection and the generations queue, as the api (producer) registers them. */
@Module({})
export class GenerationsQueueModule {
  static register(config: TokenwireConfig): DynamicModule {
    const ttl = config.generations.ttlSeconds;
    // Auto-pipelined: the enqueues of a burst leave in one write per event-loop turn instead of one each
    // (the api only adds, reads and removes jobs here; no blocking command runs on this connection).
    const connection = bullConnection(config.redis, { enableAutoPipelining: true });
    const bullModules = [
      BullModule.forRoot({
        connection,
        prefix: redisKeys(config.redis.prefix).bullPrefix(),
        defaultJobOptions: { attempts: 1, removeOnComplete: { age: ttl }, removeOnFail: { age: ttl } },
      }),
      BullModule.registerQueue({ name: GENERATIONS_QUEUE }),
    ];
    return {
      module: GenerationsQueueModule,
      imports: bullModules,
      providers: [{ provide: BULL_CONNECTION, useValue: connection }, BullConnectionCloser],
      exports: bullModules,
    };
  }
}
