import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { redisKeys, type StreamEvent } from '@tokenwire/contracts';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { testRedisUrl } from '../support/redis';
import { waitFor } from '../support/wait';

const RESET_MS = 300;

/** A breaker must close again once its upstream heals, whichever way its half-open trial ended. */
describe('circuit breaker recovery', () => {
  const upstream = new FakeOpenAIServer();
  let gateway: TestGateway;
  let redis: Redis;

  before(async () => {
    const baseUrl = await upstream.start();
    redis = new Redis(testRedisUrl());
    gateway = await startGateway({
      upstream: { maxAttempts: 1, breakerFailureThreshold: 2, breakerResetMs: RESET_MS },
      models: [
        { name: 'flaky', provider: 'openai-compatible', options: { baseUrl } },
        { name: 'capped', provider: 'openai-compatible', options: { baseUrl }, maxConcurrency: 1 },
      ],
    });
  });
  after(async () => {
    redis.disconnect();
    await gateway.close();
    await upstream.stop();
  });

  const create = async (model: string) => {
    const response = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: model }] }),
    });
    return ((await response.json()) as { id: string }).id;
  };
  const events = async (id: string) => (await readSse(`${gateway.url}/v1/generations/${id}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);
  const status = async (id: string) => ((await (await fetch(`${gateway.url}/v1/generations/${id}`)).json()) as { status: string }).status;
  const breakerState = async (model: string) =>
    ((await (await fetch(`${gateway.url}/readyz`)).json()) as { upstreams: Record<string, { state: string }> }).upstreams[model]?.state;
  const requestsFor = (model: string) => upstream.requests.filter((r) => JSON.stringify(r.body).includes(model)).length;

  async function openBreaker(model: string): Promise<void> {
    upstream.script = () => ({ status: 500 });
    for (let i = 0; i < 2; i++) assert.equal((await events(await create(model))).at(-1)?.type, 'error');
    assert.equal(await breakerState(model), 'open');
  }

  /** Once the reset time has passed, a healthy upstream answers, and the breaker is closed again. */
  async function assertHeals(model: string): Promise<void> {
    upstream.script = () => ({ tokens: ['healed'] });
    const list = await waitFor(
      `a call to ${model} to get through the breaker`,
      async () => {
        const reply = await events(await create(model));
        return reply.at(-1)?.type === 'done' ? reply : undefined;
      },
      { timeoutMs: 5_000, intervalMs: RESET_MS },
    );
    assert.equal(list.map((e) => (e.type === 'chunk' ? e.delta : '')).join(''), 'healed');
    assert.equal(await breakerState(model), 'closed');
  }

  it('opens after failures, then closes again once the upstream heals', async () => {
    await openBreaker('flaky');
    await assertHeals('flaky');
  });

  it('closes again after its half-open trial was cancelled while streaming', async () => {
    await openBreaker('flaky');
    const before = requestsFor('flaky');
    upstream.script = () => ({ tokens: ['never'], firstByteDelayMs: 10_000 });
    await new Promise((r) => setTimeout(r, RESET_MS));
    const trial = await waitFor('a trial call to reach the upstream', async () => {
      const id = await create('flaky');
      const reached = await waitFor('the call to end or reach the upstream', async () =>
        requestsFor('flaky') > before ? 'reached' : (await status(id)) === 'error' ? 'refused' : undefined,
      );
      return reached === 'reached' ? id : undefined;
    });
    assert.equal((await fetch(`${gateway.url}/v1/generations/${trial}`, { method: 'DELETE' })).status, 202);
    assert.equal((await events(trial)).at(-1)?.type, 'cancelled');
    await assertHeals('flaky');
  });

  it('closes again after its half-open trial was cancelled while waiting for a model slot', async () => {
    await openBreaker('capped');
    const leases = redisKeys(gateway.prefix).modelLeases('capped');
    await redis.zadd(leases, Date.now() + 60_000, 'someone-else'); // the only slot is taken
    await new Promise((r) => setTimeout(r, RESET_MS));
    const trial = await create('capped');
    await waitFor('the trial to start', async () => (await status(trial)) === 'running');
    assert.equal((await fetch(`${gateway.url}/v1/generations/${trial}`, { method: 'DELETE' })).status, 202);
    assert.equal((await events(trial)).at(-1)?.type, 'cancelled');
    await redis.zrem(leases, 'someone-else');
    await assertHeals('capped');
  });
});
