import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamEvent } from '@tokenwire/contracts';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { waitFor } from '../support/wait';

describe('cancellation reaches the upstream', () => {
  let upstream: FakeOpenAIServer;
  let gateway: TestGateway;

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    gateway = await startGateway({
      worker: { concurrency: 1 },
      models: [{ name: 'slow', provider: 'openai-compatible', options: { baseUrl } }],
    });
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
  });

  const create = async (content: string) => {
    const response = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content }] }),
    });
    return ((await response.json()) as { id: string }).id;
  };
  const events = async (id: string) =>
    (await readSse(`${gateway.url}/v1/generations/${id}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);

  it('DELETE on a running generation closes the upstream connection', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 500 }, (_, i) => `${i} `), tokenDelayMs: 10 });
    const id = await create('running');
    await waitFor('the upstream request', () => upstream.requests.find((r) => JSON.stringify(r.body).includes('running')));
    const request = upstream.requests.find((r) => JSON.stringify(r.body).includes('running'))!;
    const cancelledAt = performance.now();
    assert.equal((await fetch(`${gateway.url}/v1/generations/${id}`, { method: 'DELETE' })).status, 202);
    const closedAt = await Promise.race([request.closedEarly, new Promise<'open'>((r) => setTimeout(r, 5000, 'open'))]);
    assert.notEqual(closedAt, 'open', 'the upstream saw its connection close');
    const latency = (closedAt as number) - cancelledAt;
    assert.ok(latency >= 0);
    const list = await events(id);
    assert.equal(list.at(-1)?.type, 'cancelled');
    assert.equal(list.filter((e) => ['done', 'error', 'cancelled'].includes(e.type)).length, 1);
  });

  it('a generation cancelled while still queued never reaches a provider', async () => {
    upstream.script = (body) =>
      JSON.stringify(body).includes('blocker') ? { tokens: ['b'], tokenDelayMs: 400 } : { tokens: ['should', ' not', ' run'] };
    const blocker = await create('blocker'); // occupies the only worker slot
    await waitFor('the blocker to start', () => upstream.requests.some((r) => JSON.stringify(r.body).includes('blocker')));
    const queued = await create('queued');
    assert.equal((await fetch(`${gateway.url}/v1/generations/${queued}`, { method: 'DELETE' })).status, 202);

    const list = await events(queued);
    assert.deepEqual(list.map((e) => e.type), ['cancelled']);
    await events(blocker);
    // A job queued after the cancelled one has run to its end: the worker has been past the cancelled one.
    assert.equal((await events(await create('later'))).at(-1)?.type, 'done');
    assert.ok(!upstream.requests.some((r) => JSON.stringify(r.body).includes('queued')), 'the upstream never saw the cancelled job');
    const view = (await (await fetch(`${gateway.url}/v1/generations/${queued}`)).json()) as { status: string };
    assert.equal(view.status, 'cancelled');
  });
});
