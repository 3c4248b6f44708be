import type { INestApplicationContext } from '@nestjs/common';
import { createApi, type RunningApi } from '@tokenwire/api';
import { createWorker } from '@tokenwire/worker';
import type { TokenwireConfigInput } from '@tokenwire/core';
import { deletePrefix, testRedisUrl, uniquePrefix } from './redis';

export interface TestGateway {
  url: string;
  prefix: string;
  api: RunningApi;
  worker: INestApplicationContext;
  close(): Promise<void>;
}

/** The test's config: the suite's Redis, a fresh prefix, an ephemeral port. */
export function testConfig(overrides: TokenwireConfigInput = {}): TokenwireConfigInput & { redis: { url: string; prefix: string } } {
  return {
    ...overrides,
    redis: { url: testRedisUrl(), prefix: uniquePrefix(), ...overrides.redis },
    api: { host: '127.0.0.1', port: 0, metricsPort: 0, ...overrides.api },
    worker: { metricsPort: 0, ...overrides.worker },
    // No probing of a local Ollama unless a test asks for it.
    ollama: { discover: [], ...overrides.ollama },
    log: { level: (process.env.LOG_LEVEL as 'silent') ?? 'silent', ...overrides.log },
  } as TokenwireConfigInput & { redis: { url: string; prefix: string } };
}

/** An api and a worker in this process, sharing a fresh Redis prefix; `close()` removes the prefix's keys. */
export async function startGateway(overrides: TokenwireConfigInput = {}): Promise<TestGateway> {
  const config = testConfig(overrides);
  const env = {}; // only `config` counts: the test must not pick up the shell's TOKENWIRE_* variables
  const worker = await createWorker(config, env);
  const api = await createApi(config, env);
  return {
    url: api.url,
    prefix: config.redis.prefix,
    api,
    worker,
    async close() {
      await api.close();
      await worker.close();
      await deletePrefix(config.redis.prefix);
    },
  };
}
