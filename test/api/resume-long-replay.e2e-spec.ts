import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamEvent } from '@tokenwire/contracts';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';
import { readSse } from '../support/sse-client';
import { connectSocket, recordEvents } from '../support/tenants';
import { createGeneration, demoReply, longPrompt, PausableSseReader, rssBytes, sampleRss, spawnGateway, waitForEnd, type SpawnedGateway } from '../support/long-replies';
import { waitFor } from '../support/wait';

/** 20,000 chunk events of ~190 bytes: over 3 MB of job events, the size of a long reasoning reply. */
const LONG_OPTIONS = { tokenDelayMs: 0, tokens: 20_000 };
const LONG_PROMPT = longPrompt(400, 110);
const LONG = demoReply(LONG_OPTIONS, LONG_PROMPT);
/** A 10 MB reply in 5,500 events, streamed live as fast as the worker can. */
const BIG_OPTIONS = { tokenDelayMs: 0, tokens: 5_500 };
const BIG_PROMPT = longPrompt(300, 2_100);
const BIG = demoReply(BIG_OPTIONS, BIG_PROMPT);
/** Small on purpose: a 3 MB replay is 12 times this, and must still arrive whole. */
const MAX_BUFFERED_BYTES = 256 * 1024;

/**
 * Replay of any size (issue #16, 1): the log is read in pages, each written once the client drained
 * the last, so the slow-consumer limit only ever measures the live stream.
 */
describe('resuming long replies', () => {
  let gateway: SpawnedGateway;
  let longId: string;

  before(async () => {
    gateway = await spawnGateway({
      api: { maxBufferedBytes: MAX_BUFFERED_BYTES },
      worker: { coalesce: 'off' },
      models: [
        { name: 'long', provider: 'demo', options: LONG_OPTIONS },
        { name: 'big', provider: 'demo', options: BIG_OPTIONS },
      ],
    });
    longId = await createGeneration(gateway.url, 'long', LONG_PROMPT);
    await waitForEnd(gateway.url, longId, 120_000);
  });
  after(() => gateway?.close());

  const parseAll = (data: string[]) => data.map((json) => JSON.parse(json) as StreamEvent);

  it('a 20,000-event, 3 MB generation replays whole and in order from seq 0 over SSE, to 4 clients at once', async () => {
    const reads = await Promise.all(Array.from({ length: 4 }, () => readSse(`${gateway.url}/v1/generations/${longId}/events`, { headers: { 'last-event-id': '0' }, timeoutMs: 90_000 })));
    for (const { status, events } of reads) {
      assert.equal(status, 200);
      const parsed = parseAll(events.map((e) => e.data));
      assertCompleteStream(parsed);
      assert.equal(parsed.length, 20_002, 'every chunk, the usage and done');
      assert.ok(events.reduce((sum, e) => sum + e.data.length, 0) > 3_000_000, 'over 3 MB of events');
      assert.equal(visibleText(parsed), LONG);
    }
  });

  it('the same generation replays whole over Socket.IO subscribe {afterSeq: 0}, to 4 sockets at once', async () => {
    const sockets = await Promise.all(Array.from({ length: 4 }, () => connectSocket(gateway.url)));
    try {
      const received = sockets.map((socket) => recordEvents(socket));
      const acks = await Promise.all(sockets.map((socket) => socket.emitWithAck('subscribe', { jobId: longId, afterSeq: 0 })));
      for (const ack of acks) assert.ok(ack.ok, JSON.stringify(ack));
      await waitFor('4 sockets to receive done', () => received.every((byJob) => byJob.get(longId)?.at(-1)?.type === 'done'), { timeoutMs: 90_000, intervalMs: 100 });
      for (const byJob of received) {
        const events = byJob.get(longId)!;
        assertCompleteStream(events);
        assert.equal(events.length, 20_002);
        assert.equal(visibleText(events), LONG);
      }
      for (const socket of sockets) assert.ok(socket.connected, 'no socket was cut as a slow consumer by its own replay');
    } finally {
      for (const socket of sockets) socket.close();
    }
  });

  it('a reader cut for not reading the live stream resumes from its last id and catches up', async () => {
    const id = await createGeneration(gateway.url, 'big', BIG_PROMPT);
    const reader = new PausableSseReader(`${gateway.url}/v1/generations/${id}/events`);
    await waitFor('the first event', () => reader.events.length > 0);
    reader.pause();
    await waitForEnd(gateway.url, id, 120_000);
    reader.resume();
    assert.equal(await reader.ended, 'cut', 'a reader 10 MB behind was dropped, not buffered');
    const cutAt = reader.lastId;
    assert.ok(cutAt > 0 && cutAt < 5_502, `cut somewhere in the middle (after seq ${cutAt})`);

    const rest = await readSse(`${gateway.url}/v1/generations/${id}/events`, { headers: { 'last-event-id': String(cutAt) }, timeoutMs: 90_000 });
    assert.equal(rest.status, 200);
    const all = parseAll([...reader.events, ...rest.events].map((e) => e.data));
    assertCompleteStream(all);
    assert.equal(visibleText(all), BIG);
  });

  it('the api stays bounded while 10 clients replay 3 MB each', async () => {
    const pid = gateway.api.child.pid!;
    // Settle first: the baseline is the api at rest after the earlier tests.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const baseline = rssBytes(pid);
    const during = sampleRss(pid);
    const reads = await Promise.all(Array.from({ length: 10 }, () => readSse(`${gateway.url}/v1/generations/${longId}/events?lastEventId=0`, { headers: { 'accept-encoding': 'identity' }, timeoutMs: 120_000 })));
    const peak = during.stop();
    for (const { events } of reads) assert.equal(events.length, 20_002);
    const growthMb = (peak - baseline) / 2 ** 20;
    console.log(`api RSS: baseline ${(baseline / 2 ** 20).toFixed(1)} MB, peak during 10 replays of 3 MB ${(peak / 2 ** 20).toFixed(1)} MB (+${growthMb.toFixed(1)} MB)`);
    // Uncompressed, so the figure is the replay's own (a brotli stream keeps its window, a few MB each).
    // One page per reader is live at a time; the growth (55 MB alone, up to 135 MB beside other tests
    // on 2 busy cores) is garbage V8 has not collected yet. The bound catches a replay held whole.
    assert.ok(growthMb < 200, `api RSS grew by ${growthMb.toFixed(1)} MB`);
  });
});
