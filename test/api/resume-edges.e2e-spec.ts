import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { GenerationStreamService } from '@tokenwire/api';
import { redisKeys } from '@tokenwire/contracts';
import { REDIS_CLIENT } from '@tokenwire/core';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { connectSocket, recordEvents, type ClientSocket } from '../support/tenants';
import { createGeneration, waitForEnd } from '../support/long-replies';
import { waitFor } from '../support/wait';

/** 12 chunks, usage and done: seq 14 is the terminal event. */
const LAST_SEQ = 14;

interface OpenAIError {
  error: { message: string; type: string; param: string | null; code: string };
}

/** The edges of a resume (issue #16, 2-4): the end, past the end, malformed ids, trimmed and expired logs. */
describe('resume at the edges', () => {
  let gateway: TestGateway;
  let trimming: TestGateway;
  let ended: string;
  const sockets: ClientSocket[] = [];
  const events = (g: TestGateway, id: string, headers: Record<string, string> = {}, query = '') => fetch(`${g.url}/v1/generations/${id}/events${query}`, { headers });
  const socketTo = async (g: TestGateway) => {
    const socket = await connectSocket(g.url);
    sockets.push(socket);
    return socket;
  };

  before(async () => {
    gateway = await startGateway({
      worker: { coalesce: 'off' },
      models: [
        { name: 'pages', provider: 'demo', options: { tokenDelayMs: 0, tokens: 600 } },
        { name: 'short', provider: 'demo', options: { tokenDelayMs: 0, tokens: 12 } },
        { name: 'slow', provider: 'demo', options: { tokenDelayMs: 40, tokens: 200 } },
      ],
    });
    // Keeps about the last 20 events of each log (MAXLEN ~ trims whole blocks: a few more may stay).
    trimming = await startGateway({ generations: { maxEvents: 20 }, worker: { coalesce: 'off' }, models: [{ name: 'many', provider: 'demo', options: { tokenDelayMs: 0, tokens: 600 } }] });
    ended = await createGeneration(gateway.url, 'short');
    await waitForEnd(gateway.url, ended);
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all([gateway?.close(), trimming?.close()]);
  });

  it('an ended generation resumed at its last seq answers 204 at once, by header and by query', async () => {
    for (const response of [await events(gateway, ended, { 'last-event-id': String(LAST_SEQ) }), await events(gateway, ended, {}, `?lastEventId=${LAST_SEQ}`)]) {
      assert.equal(response.status, 204, 'EventSource stops reconnecting on 204');
      assert.equal(await response.text(), '');
    }
    // One before the end still gets the terminal event.
    const last = await readSse(`${gateway.url}/v1/generations/${ended}/events`, { headers: { 'last-event-id': String(LAST_SEQ - 1) } });
    assert.deepEqual(last.events.map((e) => e.event), ['done']);
  });

  it('Socket.IO agrees: subscribe at the last seq acks ended and sends nothing', async () => {
    const socket = await socketTo(gateway);
    const received = recordEvents(socket);
    const ack = await socket.emitWithAck('subscribe', { jobId: ended, afterSeq: LAST_SEQ });
    assert.deepEqual(ack, { ok: true, jobId: ended, ended: true });
    assert.equal(gateway.api.app.get(GenerationStreamService).localListenerCount(ended), 0, 'nothing is left listening');
    // Events on one socket keep their order: once a later subscription's done arrived, nothing else is coming.
    assert.ok((await socket.emitWithAck('subscribe', { jobId: ended, afterSeq: LAST_SEQ - 1 })).ok);
    await waitFor('the later subscription', () => received.get(ended)?.length);
    assert.deepEqual(received.get(ended)!.map((e) => e.seq), [LAST_SEQ]);
  });

  it('past the last seq is a 400 naming the field and the last seq, on both transports', async () => {
    for (const [headers, query, field] of [
      [{ 'last-event-id': String(LAST_SEQ + 1) }, '', 'Last-Event-ID'],
      [{}, '?lastEventId=1003', 'lastEventId'],
    ] as const) {
      const response = await events(gateway, ended, headers, query);
      assert.equal(response.status, 400);
      const { error } = (await response.json()) as OpenAIError;
      assert.equal(error.param, field);
      assert.match(error.message, new RegExp(`^${field}: .* past its last event .*\\(seq ${LAST_SEQ}\\)`));
    }
    const socket = await socketTo(gateway);
    const ack = await socket.emitWithAck('subscribe', { jobId: ended, afterSeq: LAST_SEQ + 1 });
    assert.ok(!ack.ok);
    assert.equal(ack.error.param, 'afterSeq');
    assert.equal(ack.error.status, 400);
    assert.match(ack.error.message, new RegExp(`seq ${LAST_SEQ}\\)`));
  });

  it('a running generation resumed past what was written is a 400, not a hang', async () => {
    const id = await createGeneration(gateway.url, 'slow');
    await readSse(`${gateway.url}/v1/generations/${id}/events`, { until: (event) => event.id === '2' });
    const started = Date.now();
    const response = await events(gateway, id, { 'last-event-id': '1000' });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as OpenAIError).error.message, /past the last event written so far/);
    assert.ok(Date.now() - started < 5_000, 'answered at once');
    const socket = await socketTo(gateway);
    const ack = await socket.emitWithAck('subscribe', { jobId: id, afterSeq: 1000 });
    assert.ok(!ack.ok && ack.error.param === 'afterSeq', JSON.stringify(ack));
    await fetch(`${gateway.url}/v1/generations/${id}`, { method: 'DELETE' });
  });

  it('ids are non-negative decimal integers only: anything else is a 400 naming the field', async () => {
    for (const bad of ['1e9', '0x10', '1e1', '0b11', '+5', ' 5', '5 ', '1.5', '-1', 'abc', '99999999999999999999', 'Infinity']) {
      if (bad.trim() === bad) {
        // (HTTP itself strips a header value's surrounding spaces: ' 5' arrives as '5'.)
        const byHeader = await events(gateway, ended, { 'last-event-id': bad });
        assert.equal(byHeader.status, 400, `Last-Event-ID: '${bad}'`);
        assert.equal(((await byHeader.json()) as OpenAIError).error.param, 'Last-Event-ID');
      }
      const byQuery = await events(gateway, ended, {}, `?lastEventId=${encodeURIComponent(bad)}`);
      assert.equal(byQuery.status, 400, `?lastEventId=${bad}`);
      assert.equal(((await byQuery.json()) as OpenAIError).error.param, 'lastEventId');
    }
    const listQuery = await events(gateway, ended, {}, '?lastEventId=1&lastEventId=2');
    assert.equal(listQuery.status, 400, 'a repeated query parameter');
    const socket = await socketTo(gateway);
    for (const bad of ['5', 1.5, -1, 1e300, '1e3', null, true]) {
      const ack = await socket.emitWithAck('subscribe', { jobId: ended, afterSeq: bad as number });
      assert.ok(!ack.ok, `afterSeq: ${JSON.stringify(bad)}`);
      assert.equal(ack.error.param, 'afterSeq');
    }
  });

  it('a resume from events that were trimmed is a 410 stream_expired, on both transports; a recent one still works', async () => {
    const id = await createGeneration(trimming.url, 'many');
    await waitForEnd(trimming.url, id);
    const response = await events(trimming, id, { 'last-event-id': '0' });
    assert.equal(response.status, 410);
    const { error } = (await response.json()) as OpenAIError;
    assert.equal(error.code, 'stream_expired');
    assert.equal(error.type, 'invalid_request_error');
    assert.match(error.message, /were trimmed \(the oldest kept is seq \d+\)/);

    const socket = await socketTo(trimming);
    const ack = await socket.emitWithAck('subscribe', { jobId: id, afterSeq: 5 });
    assert.ok(!ack.ok);
    assert.equal(ack.error.code, 'stream_expired');
    assert.equal(ack.error.status, 410);

    const recent = await readSse(`${trimming.url}/v1/generations/${id}/events`, { headers: { 'last-event-id': '598' } });
    assert.deepEqual(recent.events.map((e) => e.id), ['599', '600', '601', '602']);
  });

  it('a resume after the log expired is a 410 stream_expired, not an empty replay', async () => {
    const id = await createGeneration(gateway.url, 'short');
    await waitForEnd(gateway.url, id);
    const redis = gateway.api.app.get<Redis>(REDIS_CLIENT);
    const log = redisKeys(gateway.prefix).eventLog(id);
    await redis.pexpire(log, 1); // the log's TTL ran out before the generation's status did
    await waitFor('the log to expire', async () => (await redis.exists(log)) === 0);
    const response = await events(gateway, id, { 'last-event-id': '3' });
    assert.equal(response.status, 410);
    assert.match(((await response.json()) as OpenAIError).error.message, /have expired/);
    const socket = await socketTo(gateway);
    const ack = await socket.emitWithAck('subscribe', { jobId: id, afterSeq: 0 });
    assert.ok(!ack.ok && ack.error.code === 'stream_expired', JSON.stringify(ack));
  });

  it('a reader the log was trimmed under in mid-replay is closed and told, never given a hole', async () => {
    const [forSocket, forSse] = [await createGeneration(gateway.url, 'pages'), await createGeneration(gateway.url, 'pages')];
    await Promise.all([waitForEnd(gateway.url, forSocket), waitForEnd(gateway.url, forSse)]);
    const streams = gateway.api.app.get(GenerationStreamService);
    const redis = gateway.api.app.get<Redis>(REDIS_CLIENT);
    // After the first page, trim the log past where the reader is (as MAXLEN ~ does under a slow reader).
    streams.beforeNextPage = async (generationId, afterSeq) => {
      await redis.xtrim(redisKeys(gateway.prefix).eventLog(generationId), 'MINID', `${afterSeq + 100}-0`);
    };
    try {
      const socket = await socketTo(gateway);
      const received = recordEvents(socket);
      const dropped: Array<{ jobId?: string; code: string }> = [];
      socket.on('dropped', (event) => dropped.push(event));
      assert.ok((await socket.emitWithAck('subscribe', { jobId: forSocket, afterSeq: 0 })).ok);
      await waitFor('the socket to be told', () => dropped.length);
      assert.deepEqual(dropped.map(({ jobId, code }) => ({ jobId, code })), [{ jobId: forSocket, code: 'stream_expired' }]);
      const seqs = received.get(forSocket)!.map((e) => e.seq);
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'what arrived has no hole');

      const sse = await readSse(`${gateway.url}/v1/generations/${forSse}/events`);
      const ids = sse.events.map((e) => Number(e.id));
      assert.ok(ids.length > 0);
      assert.deepEqual(ids, ids.map((_, i) => i + 1), 'the SSE reader gets no hole either');
      assert.ok(!sse.events.some((e) => e.event === 'done'), 'and its response ends without a terminal event');
      const resumed = await events(gateway, forSse, { 'last-event-id': String(ids.at(-1)) });
      assert.equal(resumed.status, 410, 'its resume is told the events are gone');
    } finally {
      streams.beforeNextPage = undefined;
    }
  });
});
