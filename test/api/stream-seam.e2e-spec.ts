import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { GenerationStreamService } from '@tokenwire/api';
import type { Redis } from 'ioredis';
import { redisKeys, type StreamEvent } from '@tokenwire/contracts';
import { EventLog, REDIS_CLIENT } from '@tokenwire/core';
import { startGateway, type TestGateway } from '../support/gateway';
import { waitFor } from '../support/wait';

/**
 * The replay/live seam: events published between the live SUBSCRIBE and the log
 * read (XRANGE) must be delivered once, in order. The hook forces that window open.
 */
describe('replay/live seam', () => {
  let gateway: TestGateway;
  let streams: GenerationStreamService;
  let log: EventLog;

  before(async () => {
    gateway = await startGateway({ models: [{ name: 'demo', provider: 'demo', options: {} }] });
    streams = gateway.api.app.get(GenerationStreamService);
    log = gateway.api.app.get(EventLog);
  });
  after(() => gateway.close());

  it('delivers events written between subscribe and replay exactly once, in order', async () => {
    const id = randomUUID();
    for (let seq = 1; seq <= 3; seq++) await log.appender(id)(seq, { type: 'chunk', delta: `r${seq}` });
    streams.beforeReplay = async (generationId) => {
      if (generationId !== id) return;
      // Inside the window: these reach the live buffer AND the log the replay is about to read.
      for (let seq = 4; seq <= 6; seq++) await log.appender(id)(seq, { type: 'chunk', delta: `w${seq}` });
    };
    const received: StreamEvent[] = [];
    try {
      await streams.subscribe(id, 1, (event) => received.push(event));
    } finally {
      streams.beforeReplay = undefined;
    }
    for (let seq = 7; seq <= 8; seq++) await log.appender(id)(seq, { type: 'chunk', delta: `l${seq}` });
    await log.appendTerminal(id, { type: 'done', finishReason: 'stop' });

    await waitFor('terminal event', () => received.some((e) => e.type === 'done'));
    assert.deepEqual(received.map((e) => e.seq), [2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(
      received.map((e) => (e.type === 'chunk' ? e.delta : e.type)),
      ['r2', 'r3', 'w4', 'w5', 'w6', 'l7', 'l8', 'done'],
    );
    assert.equal(streams.localListenerCount(id), 0, 'the subscription closed after the terminal event');
  });

  it('re-reads the log when a live message skips a seq', async () => {
    const id = randomUUID();
    const received: StreamEvent[] = [];
    await streams.subscribe(id, 0, (event) => received.push(event));
    await log.appender(id)(1, { type: 'chunk', delta: 'a' });
    // Write seq 2 to the log only (as if its live message were lost), then seq 3 normally.
    const redis = gateway.api.app.get<Redis>(REDIS_CLIENT);
    await redis.xadd(
      redisKeys(gateway.prefix).eventLog(id),
      '2-0',
      'e',
      JSON.stringify({ jobId: id, seq: 2, type: 'chunk', delta: 'b' }),
    );
    await log.appender(id)(3, { type: 'chunk', delta: 'c' });
    await log.appendTerminal(id, { type: 'done', finishReason: 'stop' });
    await waitFor('terminal event', () => received.some((e) => e.type === 'done'));
    assert.deepEqual(received.map((e) => (e.type === 'chunk' ? e.delta : e.type)), ['a', 'b', 'c', 'done']);
  });

  it('a live message ahead of the log (a failover: the new master lacks an event) is waited for, not re-read in a loop', async () => {
    const id = randomUUID();
    const received: StreamEvent[] = [];
    await streams.subscribe(id, 0, (event) => received.push(event));
    await log.appender(id)(1, { type: 'chunk', delta: 'a' });
    await waitFor('the first event', () => received.length === 1);
    // Count the api's reads of this log (the real reads run; the wrapper only counts them).
    let reads = 0;
    const readAfter = log.readAfter.bind(log);
    log.readAfter = (generationId, afterSeq, count) => {
      if (generationId === id) reads++;
      return readAfter(generationId, afterSeq, count);
    };
    try {
      // Seq 3 arrives live while the log holds only seq 1: its writer has not yet re-sent seq 2 to the new master.
      const redis = gateway.api.app.get<Redis>(REDIS_CLIENT);
      await redis.publish(redisKeys(gateway.prefix).liveChannel(id), JSON.stringify({ jobId: id, seq: 3, type: 'chunk', delta: 'c' }));
      await waitFor('the reader to re-read the log', () => reads > 0);
      const readsAt = performance.now();
      await sleep(1_000);
      assert.ok(reads <= 20, `the log was read ${reads} times in ${Math.round(performance.now() - readsAt)} ms while it could not fill the gap`);

      // The writer re-sends seq 2, then goes on: the reader gets it at once (a live message wakes it), each seq once.
      const resentAt = performance.now();
      await log.appender(id)(2, { type: 'chunk', delta: 'b' });
      await waitFor('seq 2', () => received.some((event) => event.seq === 2));
      assert.ok(performance.now() - resentAt < 500, `seq 2 reached the reader ${Math.round(performance.now() - resentAt)} ms after it was written`);
      await log.appender(id)(3, { type: 'chunk', delta: 'c' });
      await log.appendTerminal(id, { type: 'done', finishReason: 'stop' });
      await waitFor('terminal event', () => received.some((e) => e.type === 'done'));
      assert.deepEqual(received.map((e) => e.seq), [1, 2, 3, 4]);
      assert.deepEqual(received.map((e) => (e.type === 'chunk' ? e.delta : e.type)), ['a', 'b', 'c', 'done']);
    } finally {
      log.readAfter = readAfter;
    }
  });

  it('an append sent again (a resend after a dropped connection) succeeds once; a different event at that seq is refused', async () => {
    const id = randomUUID();
    const append = log.appender(id);
    // A raw subscriber: the api's own subscription would hide a second publish (it drops seen seqs).
    const subscriber = gateway.api.app.get<Redis>(REDIS_CLIENT).duplicate();
    const published: number[] = [];
    subscriber.on('message', (_channel: string, json: string) => published.push((JSON.parse(json) as StreamEvent).seq));
    await subscriber.subscribe(redisKeys(gateway.prefix).liveChannel(id));
    try {
      assert.equal(await append(1, { type: 'chunk', delta: 'once' }), 'written');
      assert.equal(await append(1, { type: 'chunk', delta: 'once' }), 'written', 'the same entry again is a success');
      await assert.rejects(append(1, { type: 'chunk', delta: 'other' }), /already taken by a different event/, 'a second writer is an error');
      assert.equal(await append(2, { type: 'chunk', delta: 'next' }), 'written');
      await waitFor('both live events', () => published.length >= 2);
      assert.deepEqual((await log.readAfter(id, 0)).map((e) => (e.event.type === 'chunk' ? e.event.delta : e.event.type)), ['once', 'next']);
      assert.deepEqual(published, [1, 2], 'published once each');
    } finally {
      subscriber.disconnect();
    }
  });

  it('a terminal write sent again (a resend) gets its seq again; another writer still gets none', async () => {
    const id = randomUUID();
    await log.appender(id)(1, { type: 'chunk', delta: 'x' });
    const k = redisKeys(gateway.prefix);
    // The script as EventLog.appendTerminal sends it; a resend repeats every argument, its token included.
    const redis = gateway.api.app.get<Redis>(REDIS_CLIENT) as Redis & { twAppendTerminal(...args: unknown[]): Promise<number> };
    const write = (token: string) =>
      redis.twAppendTerminal(k.eventLog(id), k.terminalMarker(id), k.meta(id), id, '{"type":"done","finishReason":"stop"}', k.liveChannel(id), 1000, 60, 'done', Date.now(), token);
    assert.equal(await write('writer-a'), 2);
    assert.equal(await write('writer-a'), 2, 'the same write again gets its seq');
    assert.equal(await write('writer-b'), 0, 'another writer gets none');
    assert.equal((await log.readAfter(id, 0)).filter((e) => e.event.type === 'done').length, 1);
  });

  it("the appends of one turn go out together, and each generation still gets its own answer", async () => {
    const [ended, owned, lost, clash, gappy] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await log.appender(ended)(1, { type: 'chunk', delta: 'x' });
    await log.appendTerminal(ended, { type: 'done', finishReason: 'stop' });
    assert.equal((await log.claimRun(owned, 'run-a')).kind, 'claimed');
    assert.equal((await log.claimRun(lost, 'run-old')).kind, 'claimed');
    assert.equal((await log.claimRun(lost, 'run-new')).kind, 'claimed', 'a newer run took this one over');
    await log.appender(clash)(1, { type: 'chunk', delta: 'first' });
    await log.appender(gappy)(1, { type: 'chunk', delta: 'g1' });
    // A writer with its own connection, whose commands are counted as they are sent.
    const connection = gateway.api.app.get<Redis>(REDIS_CLIENT).duplicate();
    const sent: string[] = [];
    const sendCommand = connection.sendCommand.bind(connection);
    connection.sendCommand = (command, stream) => (sent.push(command.name), sendCommand(command, stream));
    const writer = new EventLog(connection, redisKeys(gateway.prefix), { ttlSeconds: 60, maxEvents: 1000 });
    await connection.ping(); // connected: a command queued while connecting is sent twice through sendCommand
    sent.length = 0;
    try {
      // All in one turn: one script call for every generation.
      const results = await Promise.allSettled([
        writer.appender(owned, 'run-a')(1, { type: 'chunk', delta: 'o1' }),
        writer.appender(ended)(3, { type: 'chunk', delta: 'late' }),
        writer.appender(lost, 'run-old')(1, { type: 'chunk', delta: 'stale' }),
        writer.appender(owned, 'run-a')(2, { type: 'chunk', delta: 'o2' }),
        writer.appender(clash)(1, { type: 'chunk', delta: 'second writer' }),
        writer.appender(lost, 'run-new')(1, { type: 'chunk', delta: 'fresh' }),
        writer.appender(gappy)(3, { type: 'chunk', delta: 'g3 before g2' }),
        writer.appender(gappy)(2, { type: 'chunk', delta: 'g2' }),
      ]);
      assert.deepEqual(
        results.map((r) => (r.status === 'fulfilled' ? r.value : /already taken/.test(String(r.reason)) ? 'taken' : String(r.reason))),
        ['written', 'ended', 'lost', 'written', 'taken', 'written', 'gap', 'written'],
      );
      assert.deepEqual(sent.filter((name) => name === 'evalsha' || name === 'eval'), ['evalsha'], `one script call for the turn (sent: ${sent.join(', ')})`);
    } finally {
      connection.disconnect();
    }
    const texts = async (id: string) => (await log.readAfter(id, 0)).map((e) => (e.event.type === 'chunk' ? e.event.delta : e.event.type));
    assert.deepEqual(await texts(owned), ['o1', 'o2']);
    assert.deepEqual(await texts(lost), ['fresh']);
    assert.deepEqual(await texts(clash), ['first']);
    assert.deepEqual(await texts(ended), ['x', 'done']);
    assert.deepEqual(await texts(gappy), ['g1', 'g2'], 'never a hole: seq 3 waits for seq 2');
  });

  it("a run's appends, each its own call: the top seq it checks follows the log (gap, resend, clash, a log gone, meta gone)", async () => {
    const id = randomUUID();
    const k = redisKeys(gateway.prefix);
    const redis = gateway.api.app.get<Redis>(REDIS_CLIENT);
    await redis.hset(k.meta(id), 'status', 'queued'); // the api's meta
    assert.equal((await log.claimRun(id, 'run-a')).kind, 'claimed');
    const append = log.appender(id, 'run-a');
    const chunk = (delta: string) => ({ type: 'chunk' as const, delta });
    assert.equal(await append(1, chunk('a1')), 'written');
    assert.equal(await append(2, chunk('a2')), 'written');
    assert.equal(await append(4, chunk('a4')), 'gap', 'seq 3 is missing');
    assert.equal(await append(2, chunk('a2')), 'written', 'the same event again: a resend');
    await assert.rejects(append(2, chunk('other')), /already taken/, 'a different event at a written seq');
    assert.equal(await append(3, chunk('a3')), 'written');
    assert.equal(await append(4, chunk('a4')), 'written');
    assert.deepEqual((await log.readAfter(id, 0)).map((e) => (e.event.type === 'chunk' ? e.event.delta : e.event.type)), ['a1', 'a2', 'a3', 'a4']);
    // A claim after the log was written (a re-delivered job) starts from the log's top.
    assert.deepEqual(await log.claimRun(id, 'run-b'), { kind: 'claimed', lastSeq: 4 });
    const appendB = log.appender(id, 'run-b');
    assert.equal(await append(5, chunk('stale')), 'lost', 'the older run is refused');
    assert.equal(await appendB(6, chunk('b6')), 'gap', 'the new run must continue at seq 5');
    assert.equal(await appendB(5, chunk('b5')), 'written');
    // The log is gone (expired) while meta stays: the next append finds the events before it missing.
    await redis.del(k.eventLog(id));
    assert.equal(await appendB(6, chunk('b6')), 'gap', 'never a hole: the log lacks seq 1-5');
    // Meta is gone: the run no longer owns anything, and meta is not recreated.
    await redis.del(k.meta(id));
    assert.equal(await appendB(1, chunk('b1')), 'lost');
    assert.equal(await redis.exists(k.meta(id)), 0, 'meta was not recreated');
  });

  it('writes one terminal event even when two writers race to end a generation', async () => {
    const id = randomUUID();
    await log.appender(id)(1, { type: 'chunk', delta: 'x' });
    const results = await Promise.all([
      log.appendTerminal(id, { type: 'done', finishReason: 'stop' }),
      log.appendTerminal(id, { type: 'cancelled', reason: 'race' }),
      log.appendTerminal(id, { type: 'error', code: 'internal_error', message: 'race' }),
    ]);
    assert.equal(results.filter((seq) => seq !== undefined).length, 1);
    const events = await log.readAfter(id, 0);
    assert.equal(events.filter((e) => ['done', 'cancelled', 'error'].includes(e.event.type)).length, 1);
    assert.equal(await log.appender(id)(3, { type: 'chunk', delta: 'late' }), 'ended', 'no event after the terminal one');
  });
});
