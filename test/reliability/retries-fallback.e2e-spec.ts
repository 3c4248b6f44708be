import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamEvent } from '@tokenwire/contracts';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';

/** Retries before the first token, fallback, circuit breaker and stall detection, against real SSE upstreams. */
describe('upstream retries, fallback, breaker and stall', () => {
  let primary: FakeOpenAIServer;
  let backup: FakeOpenAIServer;
  let gateway: TestGateway;

  before(async () => {
    primary = new FakeOpenAIServer();
    backup = new FakeOpenAIServer();
    const [primaryUrl, backupUrl] = await Promise.all([primary.start(), backup.start()]);
    gateway = await startGateway({
      upstream: { maxAttempts: 3, retryBaseDelayMs: 20, retryMaxDelayMs: 2000, stallTimeoutMs: 300, breakerFailureThreshold: 1000 },
      models: [
        { name: 'primary', provider: 'openai-compatible', options: { baseUrl: primaryUrl }, fallbacks: ['backup'] },
        { name: 'backup', provider: 'openai-compatible', options: { baseUrl: backupUrl } },
        { name: 'fragile', provider: 'openai-compatible', options: { baseUrl: primaryUrl } },
      ],
    });
  });
  beforeEach(() => {
    primary.requests.length = 0;
    backup.requests.length = 0;
  });
  after(async () => {
    await gateway.close();
    await Promise.all([primary.stop(), backup.stop()]);
  });

  async function generate(model: string): Promise<StreamEvent[]> {
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] }),
    });
    const { id } = (await created.json()) as { id: string };
    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
    return events.map((e) => JSON.parse(e.data) as StreamEvent);
  }
  const text = (events: StreamEvent[]) => events.map((e) => (e.type === 'chunk' ? e.delta : '')).join('');

  it('an upstream that returns 503 twice then streams: the client gets the full text', async () => {
    primary.script = (_body, index) => (index < 2 ? { status: 503 } : { tokens: ['third', ' time', ' lucky'] });
    const events = await generate('primary');
    assert.equal(text(events), 'third time lucky');
    assert.equal(events.at(-1)?.type, 'done');
    assert.equal(primary.requests.length, 3);
    assert.equal(backup.requests.length, 0);
  });

  it('honours Retry-After on a 429 before retrying', async () => {
    primary.script = (_body, index) => (index === 0 ? { status: 429, retryAfter: '1' } : { tokens: ['ok'] });
    const events = await generate('primary');
    assert.equal(text(events), 'ok');
    const waited = primary.requests[1]!.startedAt - primary.requests[0]!.startedAt;
    assert.ok(waited >= 950, `the retry waited ${waited} ms, Retry-After asked for 1000 ms`);
  });

  it('an upstream that always fails: the fallback model answers', async () => {
    primary.script = () => ({ status: 502 });
    backup.script = () => ({ tokens: ['from', ' the', ' backup'] });
    const events = await generate('primary');
    assert.equal(text(events), 'from the backup');
    assert.equal(primary.requests.length, 3, 'the primary got all its attempts first');
    assert.equal(backup.requests.length, 1);
  });

  it('a non-retryable upstream error (400) is not retried and reaches the client', async () => {
    primary.script = () => ({ status: 400, errorBody: '{"error":{"message":"bad prompt"}}' });
    const events = await generate('fragile');
    const last = events.at(-1)!;
    assert.ok(last.type === 'error' && last.status === 400 && /bad prompt/.test(last.message), JSON.stringify(last));
    assert.equal(primary.requests.length, 1);
  });

  it('after the first token an upstream failure ends the stream with an error: no silent restart', async () => {
    primary.script = () => ({ tokens: ['one', ' two', ' three'], dropAfter: 2 });
    const events = await generate('fragile');
    assert.equal(text(events), 'one two');
    const last = events.at(-1)!;
    assert.ok(last.type === 'error' && last.code === 'upstream_closed', JSON.stringify(last));
    assert.equal(primary.requests.length, 1);
  });

  it('an upstream that sends nothing for the stall timeout is aborted with upstream_stalled', async () => {
    // maxAttempts 3: a stall before the first token is retried, so every attempt stalls here.
    primary.script = () => ({ tokens: ['late'], firstByteDelayMs: 5_000 });
    const events = await generate('fragile');
    const last = events.at(-1)!;
    assert.ok(last.type === 'error' && last.code === 'upstream_stalled', JSON.stringify(last));
    for (const request of primary.requests) {
      const closed = await Promise.race([request.closedEarly, new Promise<'open'>((r) => setTimeout(r, 1000, 'open'))]);
      assert.notEqual(closed, 'open', 'the stalled upstream connection was closed');
    }
  });
});

describe('circuit breaker', () => {
  let upstream: FakeOpenAIServer;
  let gateway: TestGateway;

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    gateway = await startGateway({
      upstream: { maxAttempts: 1, breakerFailureThreshold: 2, breakerResetMs: 60_000 },
      models: [{ name: 'dead', provider: 'openai-compatible', options: { baseUrl } }],
    });
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
  });

  it('opens after consecutive failures, stops calling the upstream, and shows in /readyz', async () => {
    upstream.script = () => ({ status: 500 });
    for (let i = 0; i < 4; i++) {
      const created = await fetch(`${gateway.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'dead', messages: [{ role: 'user', content: 'x' }] }),
      });
      const { id } = (await created.json()) as { id: string };
      const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
      assert.equal(JSON.parse(events.at(-1)!.data).type, 'error');
    }
    assert.equal(upstream.requests.length, 2, 'calls 3 and 4 never reached the upstream');
    const ready = (await (await fetch(`${gateway.url}/readyz`)).json()) as { upstreams: Record<string, { state: string }> };
    assert.equal(ready.upstreams.dead?.state, 'open');
  });
});
