import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { INestApplicationContext } from '@nestjs/common';
import { createWorker } from '@tokenwire/worker';
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
});
