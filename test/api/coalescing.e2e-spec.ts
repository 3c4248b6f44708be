import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '@tokenwire/core';
import type { StreamEvent } from '@tokenwire/contracts';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';

/** worker.coalesce: how upstream deltas become events. */
describe('delta coalescing', () => {
  let upstream: FakeOpenAIServer;
  const gateways: Record<string, TestGateway> = {};

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    for (const coalesce of ['off', 'turn', 50] as const) {
      gateways[coalesce] = await startGateway({ worker: { coalesce }, models: [{ name: 'up', provider: 'openai-compatible', options: { baseUrl } }] });
    }
  });
  after(async () => {
    await Promise.all(Object.values(gateways).map((g) => g.close()));
    await upstream.stop();
  });

  async function chunks(gateway: TestGateway): Promise<StreamEvent[]> {
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'up', messages: [{ role: 'user', content: 'x' }] }),
    });
    const { id } = (await created.json()) as { id: string };
    const events = (await readSse(`${gateway.url}/v1/generations/${id}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);
    assertCompleteStream(events);
    return events;
  }
  const tokens = ['one', ' two', ' three', ' four', ' five'];

  it('turn: deltas of one upstream read become one event; the text is unchanged', async () => {
    upstream.script = () => ({ tokens }); // all five frames in one write
    const events = await chunks(gateways.turn!);
    assert.equal(visibleText(events), tokens.join(''));
    assert.ok(events.filter((e) => e.type === 'chunk').length < tokens.length, 'fewer events than deltas');
  });

  it('turn: deltas that arrive apart stay separate events (no added latency)', async () => {
    upstream.script = () => ({ tokens, tokenDelayMs: 30 });
    const events = await chunks(gateways.turn!);
    assert.deepEqual(events.filter((e) => e.type === 'chunk').map((e) => (e as { delta: string }).delta), tokens);
  });

  it('off: one event per upstream delta', async () => {
    upstream.script = () => ({ tokens });
    const events = await chunks(gateways.off!);
    assert.deepEqual(events.filter((e) => e.type === 'chunk').map((e) => (e as { delta: string }).delta), tokens);
  });

  it('a window in ms: deltas within it become one event, the text is unchanged', async () => {
    upstream.script = () => ({ tokens, tokenDelayMs: 5 });
    const events = await chunks(gateways[50]!);
    assert.equal(visibleText(events), tokens.join(''));
    assert.ok(events.filter((e) => e.type === 'chunk').length < tokens.length, 'fewer events than deltas');
  });

  it('a window in ms cut short by the end of the stream leaves the worker working (five streams in a row)', async () => {
    // The stream ends while the window's timer is pending, so the writer clears it early.
    upstream.script = () => ({ tokens });
    for (let i = 0; i < 5; i++) assert.equal(visibleText(await chunks(gateways[50]!)), tokens.join(''));
  });

  it('a bad setting stops start-up naming the key', () => {
    assert.throws(() => loadConfig({ TOKENWIRE_COALESCE: 'sometimes' }), /worker\.coalesce: expected off, turn or a positive number of ms \(from env TOKENWIRE_COALESCE="sometimes"\)/);
  });
});
