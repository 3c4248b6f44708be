import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';

const DEMO_OPTIONS = { tokenDelayMs: 20, tokens: 20 };

describe('job SSE stream with Last-Event-ID resume', () => {
  let gateway: TestGateway;

  before(async () => {
    gateway = await startGateway({ models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }] });
  });
  after(() => gateway.close());

  const create = async (content: string) => {
    const response = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content }] }),
    });
    assert.equal(response.status, 202);
    return ((await response.json()) as { id: string }).id;
  };

  it('a client that disconnects after seq 5 and reconnects with Last-Event-ID: 5 gets 6.. with no gap and no duplicate', async () => {
    const id = await create('resume me');
    const first = await readSse(`${gateway.url}/v1/generations/${id}/events`, { until: (event) => event.id === '5' });
    assert.deepEqual(first.events.map((e) => e.id), ['1', '2', '3', '4', '5']);

    const second = await readSse(`${gateway.url}/v1/generations/${id}/events`, { headers: { 'last-event-id': '5' } });
    const ids = second.events.map((e) => Number(e.id));
    assert.equal(ids[0], 6, 'resumes right after the last seen seq');
    assert.deepEqual(ids, ids.map((_, i) => 6 + i), 'no gap, no duplicate');
    assert.equal(second.events.at(-1)?.event, 'done');

    const all = [...first.events, ...second.events].map((e) => JSON.parse(e.data) as StreamEvent);
    const text = all.map((e) => (e.type === 'chunk' ? e.delta : '')).join('');
    assert.equal(text, new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'resume me' }]).join(''));
  });

  it('replays a finished generation from the log and reports it through GET /v1/generations/:id', async () => {
    const id = await create('finished');
    await readSse(`${gateway.url}/v1/generations/${id}/events`);
    const replay = await readSse(`${gateway.url}/v1/generations/${id}/events?lastEventId=18`);
    assert.deepEqual(replay.events.map((e) => e.id), ['19', '20', '21', '22']);
    assert.deepEqual(replay.events.map((e) => e.event), ['chunk', 'chunk', 'usage', 'done']);

    const view = (await (await fetch(`${gateway.url}/v1/generations/${id}`)).json()) as Record<string, unknown>;
    assert.equal(view.status, 'done');
    assert.equal(view.finishReason, 'stop');
    assert.equal(view.text, new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'finished' }]).join(''));
  });

  it('DELETE cancels a running generation (after its first chunk); a second DELETE answers 409', async () => {
    const id = await create('cancel me');
    // Cancelled once it really runs: the first chunk has reached this reader.
    let firstChunk!: () => void;
    const running = new Promise<void>((resolve) => (firstChunk = resolve));
    const stream = readSse(`${gateway.url}/v1/generations/${id}/events`, {
      until: (event) => {
        if (event.event === 'chunk') firstChunk();
        return false;
      },
    });
    await running;
    assert.equal(((await (await fetch(`${gateway.url}/v1/generations/${id}`)).json()) as { status: string }).status, 'running');
    const cancel = await fetch(`${gateway.url}/v1/generations/${id}`, { method: 'DELETE' });
    assert.equal(cancel.status, 202);
    const { events } = await stream;
    assert.ok(events.some((e) => e.event === 'chunk'), 'chunks before the cancel');
    assert.ok(events.filter((e) => e.event === 'chunk').length < DEMO_OPTIONS.tokens, 'the reply was cut short');
    assert.equal(events.at(-1)?.event, 'cancelled');
    assert.equal(events.filter((e) => ['done', 'error', 'cancelled'].includes(e.event ?? '')).length, 1);
    const again = await fetch(`${gateway.url}/v1/generations/${id}`, { method: 'DELETE' });
    assert.equal(again.status, 409);
  });

  it('answers 404 for an unknown generation and 400 for a bad Last-Event-ID', async () => {
    assert.equal((await fetch(`${gateway.url}/v1/generations/nope/events`)).status, 404);
    assert.equal((await fetch(`${gateway.url}/v1/generations/nope`)).status, 404);
    const id = await create('bad header');
    const response = await fetch(`${gateway.url}/v1/generations/${id}/events`, { headers: { 'last-event-id': 'abc' } });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: { message: string } }).error.message, /Last-Event-ID/);
  });
});
