import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@tokenwire/contracts';
import { LOGGER, REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { checkOllamaHealth } from '@tokenwire/providers';

const CHECK_EVERY_MS = 15_000;

/** Probes the discovered Ollama servers and records up/down beside the breakers (shown by /readyz). */
@Injectable()
export class OllamaHealthService implements OnModuleInit, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private readonly last = new Map<string, boolean>();

  constructor(
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onModuleInit(): void {
    if (!this.config.ollama.discover.length) return;
    const check = (): void => {
      this.check().catch((error: unknown) => this.logger.warn({ err: error }, 'cannot check Ollama health'));
    };
    check();
    this.timer = setInterval(check, CHECK_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  async check(): Promise<void> {
    for (const url of this.config.ollama.discover) {
      const up = await checkOllamaHealth(url);
      if (this.last.get(url) !== up) this.logger.info({ ollama: url, up }, up ? 'Ollama is up' : 'Ollama is down');
      this.last.set(url, up);
      await this.redis
        .hset(this.keys.upstreamHealth(), `ollama@${url}`, JSON.stringify({ state: up ? 'up' : 'down', updatedAt: Date.now() }))
        .catch((error: unknown) => this.logger.warn({ err: error }, 'cannot record Ollama health'));
    }
  }
}
