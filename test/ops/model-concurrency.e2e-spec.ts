import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { INestApplicationContext } from '@nestjs/common';
import { createWorker } from '@tokenwire/worker';
import { UpstreamRouterService } from '@tokenwire/worker/dist/upstream/upstream-router.service';
import { LOGGER, REDIS_CLIENT, REDIS_KEYS, type Logger } from '@tokenwire/core';
import type { RedisKeys } from '@tokenwire/contracts';
import type { Redis } from 'ioredis';
import type { StreamEvent } from '@tokenwire/contracts';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, testConfig, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';

describe('per-model concurrency cap across workers', () => {
  let upstream: FakeOpenAIServer;
  let gateway: TestGateway;
  let secondWorker: INestApplicationContext;

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    const overrides = {
      worker: { concurrency: 5 },
      models: [{ name: 'narrow', provider: 'openai-compatible', options: { baseUrl }, maxConcurrency: 2 }],
    };
    gateway = await startGateway(overrides);
    // A second worker process-equivalent on the same Redis prefix: the cap must hold across both.
    secondWorker = await createWorker({ ...testConfig(overrides), redis: { url: testConfig().redis.url, prefix: gateway.prefix } }, {});
    upstream.script = () => ({ tokens: ['a', 'b', 'c'], tokenDelayMs: 60 });
  });
  after(async () => {
    await secondWorker.close();
    await gateway.close();
    await upstream.stop();
  });

  it('an upstream capped at 2 never sees more than 2 requests at once, and every job completes', async () => {
    const ids = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const response = await fetch(`${gateway.url}/v1/generations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'narrow', messages: [{ role: 'user', content: `job ${i}` }] }),
        });
        return ((await response.json()) as { id: string }).id;
      }),
    );
    const results = await Promise.all(ids.map((id) => readSse(`${gateway.url}/v1/generations/${id}/events`)));
    for (const { events } of results) assert.equal((JSON.parse(events.at(-1)!.data) as StreamEvent).type, 'done');
    assert.equal(upstream.requests.length, 8);
    assert.ok(upstream.peakActive <= 2, `the upstream saw ${upstream.peakActive} requests at once`);
    assert.equal(upstream.peakActive, 2, 'the cap was used fully');
  });

  it('a consumer that stops reading after the first token frees its model slot and closes the upstream call (router hand-over)', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 100 }, (_, i) => `${i} `), tokenDelayMs: 50 });
    const router = secondWorker.get(UpstreamRouterService);
    const redis = secondWorker.get<string, Redis>(REDIS_CLIENT);
    const leases = secondWorker.get<string, RedisKeys>(REDIS_KEYS).modelLeases('narrow');
    const log = secondWorker.get<string, Logger>(LOGGER);
    const open = (holder: string) =>
      router.stream('narrow', { messages: [{ role: 'user', content: holder }], params: {} }, new AbortController().signal, log, holder)[Symbol.asyncIterator]();
    const readers = [open('reader-1'), open('reader-2')];
    for (const reader of readers) assert.equal((await reader.next()).done, false);
    const calls = upstream.requests.slice(-2);
    assert.equal(await redis.zcard(leases), 2, 'both readers hold a slot while they read');
    for (const reader of readers) assert.deepEqual(await reader.return?.(), { done: true, value: undefined });
    assert.equal(await redis.zcard(leases), 0, 'return() resolves once both slots are free');
    for (const call of calls) {
      assert.ok(await Promise.race([call.closedEarly.then(() => true), new Promise<false>((r) => setTimeout(r, 2_000, false))]), 'the upstream call was closed');
    }
  });
});
