import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { io, type Socket } from 'socket.io-client';
import { GENERATIONS_NAMESPACE, redisKeys, type ClientToServerEvents, type ServerToClientEvents, type StreamEvent } from '@tokenwire/contracts';
import { startGateway, type TestGateway } from '../support/gateway';
import { testRedisUrl } from '../support/redis';
import { demoReply } from '../support/long-replies';
import { readSse } from '../support/sse-client';
import { visibleText } from '../support/stream-assertions';
import { waitFor } from '../support/wait';

type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

// 300 tokens 40 ms apart: about 12 s, longer than the api's listener renewal (10 s), so a healthy
// generation beside a lost one lives through at least one check.
const SLOW = { tokenDelayMs: 40, tokens: 300 };
/** Past the api's periodic check (every 10 s, after a 5 s grace) with room for a loaded machine: the bound a reader waits at most. */
const TOLD_WITHIN_MS = 25_000;

/**
 * A generation whose state vanishes from Redis while a client reads it (a failover whose promoted
 * replica lacked the data, an eviction, a FLUSHALL): nothing can end it through its log any more, so
 * each live reader is told `generation_lost` as its one terminal event, in its API's shape: the
 * resumable SSE route, the OpenAI route (the SDK raises), Socket.IO. A healthy generation beside it ends done.
 */
describe('a generation whose keys vanish from Redis mid-stream', () => {
  let gateway: TestGateway;
  let redis: Redis;
  const sockets: ClientSocket[] = [];

  before(async () => {
    gateway = await startGateway({
      // The silent generation is still waiting for its first token at the end: no need to wait for it.
      worker: { shutdownGraceMs: 500 },
      models: [
        { name: 'slow', provider: 'demo', options: SLOW },
        // Never sends a token within a test: its worker appends nothing, so only the api's own check can notice.
        { name: 'silent', provider: 'demo', options: { firstTokenDelayMs: 120_000 } },
      ],
    });
    redis = new Redis(testRedisUrl());
  });
  after(async () => {
    for (const socket of sockets) socket.disconnect();
    redis?.disconnect();
    await gateway?.close();
  });

  /** Deletes every key of the generation, as a failover that lost them or a flush would. */
  const loseKeys = async (id: string) => {
    const k = redisKeys(gateway.prefix);
    await redis.del(k.meta(id), k.eventLog(id), k.terminalMarker(id), k.cancelRequest(id), k.listeners(id));
  };

  const create = async (model: string, content: string): Promise<string> => {
    const response = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
    });
    assert.equal(response.status, 202);
    return ((await response.json()) as { id: string }).id;
  };

  const assertEndsLost = (events: StreamEvent[], what: string) => {
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
      `${what}: seqs 1..n, no gap or duplicate`,
    );
    const terminal = events.filter((e) => ['done', 'error', 'cancelled'].includes(e.type));
    assert.equal(terminal.length, 1, `${what}: exactly one terminal event`);
    const last = events.at(-1)!;
    assert.equal(last.type, 'error', `${what}: ends with an error`);
    assert.equal(last.type === 'error' && last.code, 'generation_lost');
  };

  it('resumable SSE: the reader gets error generation_lost; a healthy generation beside it ends done', async () => {
    const [lost, healthy] = [await create('slow', 'lost one'), await create('slow', 'healthy one')];
    let lostRead = 0;
    const lostReader = readSse(`${gateway.url}/v1/generations/${lost}/events`, {
      timeoutMs: 60_000,
      until: (_event, all) => ((lostRead = all.length), false),
    });
    const healthyReader = readSse(`${gateway.url}/v1/generations/${healthy}/events`, { timeoutMs: 60_000 });
    await waitFor('the lost generation to be under way', () => lostRead >= 5, { timeoutMs: 15_000 });
    await loseKeys(lost);
    const lostAt = Date.now();

    const { events } = await lostReader;
    const toldInMs = Date.now() - lostAt;
    const parsed = events.map((e) => JSON.parse(e.data) as StreamEvent);
    assertEndsLost(parsed, 'the lost generation');
    assert.equal(events.at(-1)?.event, 'error');
    assert.ok(toldInMs < TOLD_WITHIN_MS, `told in ${toldInMs} ms`);
    console.log(`resumable SSE reader told generation_lost ${toldInMs} ms after its keys vanished`);
    // Nothing to resume: the id is unknown now.
    assert.equal((await fetch(`${gateway.url}/v1/generations/${lost}`)).status, 404);

    const healthyEvents = (await healthyReader).events.map((e) => JSON.parse(e.data) as StreamEvent);
    assert.equal(healthyEvents.at(-1)?.type, 'done', 'the healthy generation ended done');
    assert.equal(healthyEvents.filter((e) => ['done', 'error', 'cancelled'].includes(e.type)).length, 1);
    // By content, not by events: a loaded worker may put two tokens into one event.
    assert.equal(visibleText(healthyEvents), demoReply(SLOW, 'healthy one'));
  });

  it('a generation no worker is writing (no append to refuse): the api finds it gone at its next check', async () => {
    const id = await create('silent', 'nothing comes');
    let opened = 0;
    const reader = readSse(`${gateway.url}/v1/generations/${id}/events`, { timeoutMs: 60_000, onResponse: (status) => (opened = status) });
    await waitFor('the generation to be running', async () => (await redis.hget(redisKeys(gateway.prefix).meta(id), 'status')) === 'running');
    // The reader's stream must be open before the keys go (else its GET finds no generation: a plain 404, not this case).
    await waitFor('the reader to have its stream open', () => opened === 200);
    await loseKeys(id);
    const lostAt = Date.now();
    const { events } = await reader;
    const toldInMs = Date.now() - lostAt;
    assertEndsLost(
      events.map((e) => JSON.parse(e.data) as StreamEvent),
      'the silent generation',
    );
    assert.ok(toldInMs < TOLD_WITHIN_MS, `told in ${toldInMs} ms`);
    console.log(`idle reader told generation_lost ${toldInMs} ms after its keys vanished`);
  });

  it('OpenAI route: the SDK raises an APIError with code generation_lost', async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'lost via openai' }] });
    let chunks = 0;
    let lostAt = 0;
    const failure = await (async () => {
      try {
        for await (const chunk of stream) {
          if (++chunks === 3) {
            await loseKeys(chunk.id.replace(/^chatcmpl-/, ''));
            lostAt = Date.now();
          }
        }
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    assert.ok(lostAt > 0, 'the keys were deleted mid-stream');
    const toldInMs = Date.now() - lostAt;
    assert.ok(failure instanceof OpenAI.APIError, `the stream raised an APIError, got ${String(failure)}`);
    assert.equal(failure.code, 'generation_lost');
    assert.ok(toldInMs < TOLD_WITHIN_MS, `told in ${toldInMs} ms`);
    assert.ok(chunks < SLOW.tokens, 'the stream did not run to its end');
  });

  it('Socket.IO: the subscriber gets an error event generation_lost', async () => {
    const socket: ClientSocket = io(`${gateway.url}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const events: StreamEvent[] = [];
    for (const type of ['chunk', 'usage', 'done', 'error', 'cancelled', 'restarted'] as const) socket.on(type, (event: StreamEvent) => events.push(event));
    const ack = await socket.emitWithAck('generate', { model: 'slow', messages: [{ role: 'user', content: 'lost via socket' }] });
    assert.ok(ack.ok, JSON.stringify(ack));
    await waitFor('the generation to be under way', () => events.length >= 5, { timeoutMs: 15_000 });
    await loseKeys(ack.jobId);
    const lostAt = Date.now();
    await waitFor('an error event', () => events.some((e) => e.type === 'error'), { timeoutMs: TOLD_WITHIN_MS, intervalMs: 50 });
    const toldInMs = Date.now() - lostAt;
    assertEndsLost(events, 'the socket stream');
    console.log(`socket subscriber told generation_lost ${toldInMs} ms after its keys vanished`);
  });
});

/**
 * A lost generation's tenant slot: the generation can never end through its log, so nothing would free
 * its place among the tenant's unfinished generations until it aged out (`generations.ttlSeconds`, an
 * hour by default). The worker that finds it gone frees it.
 */
describe('a generation whose keys vanish frees its tenant concurrency slot', () => {
  let gateway: TestGateway;
  let redis: Redis;

  before(async () => {
    gateway = await startGateway({
      worker: { shutdownGraceMs: 500 },
      limits: { maxConcurrent: 1 },
      models: [{ name: 'slow', provider: 'demo', options: SLOW }],
    });
    redis = new Redis(testRedisUrl());
  });
  after(async () => {
    redis?.disconnect();
    await gateway?.close();
  });

  const post = (content: string) =>
    fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content }] }),
    });

  it('once the worker finds the generation gone, the tenant can start another', async () => {
    const first = await post('takes the only slot');
    assert.equal(first.status, 202);
    const { id } = (await first.json()) as { id: string };
    const k = redisKeys(gateway.prefix);
    await waitFor('the generation to stream', async () => (await redis.xlen(k.eventLog(id))) >= 3, { timeoutMs: 15_000 });
    assert.equal((await post('refused: the slot is taken')).status, 429, 'maxConcurrent 1 holds while the first runs');

    await redis.del(k.meta(id), k.eventLog(id), k.terminalMarker(id), k.cancelRequest(id), k.listeners(id));
    let status = 0;
    await waitFor(
      'a new generation to be admitted',
      async () => {
        const response = await post('after the loss');
        status = response.status;
        await response.body?.cancel();
        return status === 202;
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    assert.equal(status, 202);
  });
});
