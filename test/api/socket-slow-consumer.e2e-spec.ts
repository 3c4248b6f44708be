import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamDroppedEvent } from '@tokenwire/contracts';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';
import { connectSocket, recordEvents, type ClientSocket } from '../support/tenants';
import { demoReply, longPrompt, rssBytes, sampleRss, socketConnection, spawnGateway, waitForEnd, type SpawnedGateway } from '../support/long-replies';
import { waitFor } from '../support/wait';

/** A 10 MB reply in 5,500 events. */
const BIG_OPTIONS = { tokenDelayMs: 0, tokens: 5_500 };
const BIG_PROMPT = longPrompt(300, 2_100);
const BIG = demoReply(BIG_OPTIONS, BIG_PROMPT);
/** The same reply, started 3 s after it is requested, so that many sockets follow it from its first event. */
const LATE_OPTIONS = { ...BIG_OPTIONS, firstTokenDelayMs: 3_000 };
const MAX_BUFFERED_BYTES = 256 * 1024;

/** Socket.IO slow consumers (issue #16, 5): a socket that stops reading is told and cut, and its api memory stays bounded. */
describe('Socket.IO slow consumers', () => {
  let gateway: SpawnedGateway;
  const sockets: ClientSocket[] = [];

  before(async () => {
    gateway = await spawnGateway({
      api: { maxBufferedBytes: MAX_BUFFERED_BYTES },
      worker: { coalesce: 'off' },
      models: [
        { name: 'big', provider: 'demo', options: BIG_OPTIONS },
        { name: 'late', provider: 'demo', options: LATE_OPTIONS },
      ],
    });
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await gateway?.close();
  });

  const dropLogs = () => gateway.api.logs.filter((line) => line.msg === 'slow socket consumer disconnected');

  it('a socket that stops reading is dropped with a reason, then resubscribes from its last seq and catches up', async () => {
    const socket = await connectSocket(gateway.url);
    sockets.push(socket);
    const received = recordEvents(socket);
    const dropped: StreamDroppedEvent[] = [];
    socket.on('dropped', (event) => dropped.push(event));
    const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
    const ack = await socket.emitWithAck('generate', { model: 'big', messages: [{ role: 'user', content: BIG_PROMPT }] });
    assert.ok(ack.ok, JSON.stringify(ack));
    await waitFor('the first event', () => received.get(ack.jobId)?.length);
    socketConnection(socket).pause();
    await waitFor('the api to drop the socket', () => dropLogs().length === 1, { timeoutMs: 60_000, intervalMs: 100 });
    socketConnection(socket).resume();
    assert.equal(await disconnected, 'io server disconnect');
    assert.deepEqual(dropped.map((d) => d.code), ['slow_consumer'], 'told why before the disconnect');
    assert.match(dropped[0]!.message, /owed more than 262144 bytes/);
    const lastSeq = received.get(ack.jobId)!.at(-1)!.seq;
    assert.ok(lastSeq < 5_502, `cut before the end (at seq ${lastSeq})`);

    socket.connect();
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const resumed = await socket.emitWithAck('subscribe', { jobId: ack.jobId, afterSeq: lastSeq });
    assert.ok(resumed.ok, JSON.stringify(resumed));
    await waitFor('the resumed stream to end', () => received.get(ack.jobId)!.at(-1)!.type === 'done', { timeoutMs: 90_000, intervalMs: 100 });
    const events = received.get(ack.jobId)!;
    assertCompleteStream(events);
    assert.equal(visibleText(events), BIG);
  });

  it('50 sockets that stop reading a 10 MB reply are dropped and the api memory stays bounded', async () => {
    const pid = gateway.api.child.pid!;
    const before = dropLogs().length;
    const many = await Promise.all(Array.from({ length: 50 }, () => connectSocket(gateway.url)));
    sockets.push(...many);
    const baseline = rssBytes(pid);
    const sampler = sampleRss(pid);
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'late', messages: [{ role: 'user', content: BIG_PROMPT }] }),
    });
    const { id } = (await created.json()) as { id: string };
    for (const socket of many) assert.ok((await socket.emitWithAck('subscribe', { jobId: id, afterSeq: 0 })).ok);
    for (const socket of many) socketConnection(socket).pause();
    await waitForEnd(gateway.url, id, 120_000);
    await waitFor('all 50 sockets to be dropped', () => dropLogs().length - before === 50, { timeoutMs: 60_000, intervalMs: 200 });
    const peak = sampler.stop();
    const growthMb = (peak - baseline) / 2 ** 20;
    console.log(`api RSS with 50 non-reading sockets on a 10 MB reply: baseline ${(baseline / 2 ** 20).toFixed(1)} MB, peak ${(peak / 2 ** 20).toFixed(1)} MB (+${growthMb.toFixed(1)} MB)`);
    // What each socket may hold is capped at 256 KB (12.5 MB for 50); measured +127 MB on 2 busy cores,
    // most of it garbage from writing 10 MB to 50 sockets that V8 had not collected yet.
    assert.ok(growthMb < 256, `api RSS grew by ${growthMb.toFixed(1)} MB`);
    for (const socket of many) socket.close();
  });
});
