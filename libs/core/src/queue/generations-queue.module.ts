import { BullModule } from '@nestjs/bullmq';
import { Module, type DynamicModule } from '@nestjs/common';
import { GENERATIONS_QUEUE, redisKeys } from '@tokenwire/contracts';
import type { TokenwireConfig } from '../config/config.schema';
import { redisConnectionOptions } from '../redis/redis-options';

/** The BullMQ connection and the generations queue, registered the same way by api (producer) and worker (consumer). */
@Module({})
export class GenerationsQueueModule {
  static register(config: TokenwireConfig): DynamicModule {
    const ttl = config.generations.ttlSeconds;
    const bullModules = [
      BullModule.forRoot({
        // BullMQ's blocking connections must retry forever rather than fail a command.
        connection: { ...redisConnectionOptions(config.redis), maxRetriesPerRequest: null },
        prefix: redisKeys(config.redis.prefix).bullPrefix(),
        defaultJobOptions: { attempts: 1, removeOnComplete: { age: ttl }, removeOnFail: { age: ttl } },
      }),
      BullModule.registerQueue({ name: GENERATIONS_QUEUE }),
    ];
    return { module: GenerationsQueueModule, imports: bullModules, exports: bullModules };
  }
}
