import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import { io } from 'socket.io-client';
import { GENERATIONS_NAMESPACE, type StreamEvent } from '@tokenwire/contracts';
import { FakeOpenAIServer } from './support/fake-openai-server';
import { startGateway, type TestGateway } from './support/gateway';
import { PrivateRedis } from './support/redis-server';
import { deletePrefix, testRedisUrl, uniquePrefix } from './support/redis';
import { spawnApp, writeConfigFile, type AppProcess } from './support/processes';
import { readSse } from './support/sse-client';
import { assertCompleteStream, visibleText } from './support/stream-assertions';
import { waitFor } from './support/wait';

/** The complaints that fill other gateways' trackers, one test each (README: "Known failure modes we test for"). */
describe('known failure modes', () => {
  let upstream: FakeOpenAIServer;
  let gateway: TestGateway;
  let client: OpenAI;

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    gateway = await startGateway({
      api: { sseKeepAliveMs: 100 },
      upstream: { maxAttempts: 1 },
      models: [
        { name: 'upstream', provider: 'openai-compatible', options: { baseUrl } },
        { name: 'fast', provider: 'demo', options: { tokenDelayMs: 0, tokens: 10_000 } },
        { name: 'fast-small', provider: 'demo', options: { tokenDelayMs: 0, tokens: 1_000 } },
      ],
    });
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
  });

  const createJob = async (model: string, content = 'x') => {
    const response = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
    });
    return ((await response.json()) as { id: string }).id;
  };
  const requestFor = (marker: string) => waitFor(`the upstream request "${marker}"`, () => upstream.requests.find((r) => JSON.stringify(r.body).includes(marker)));
  const closedWithin = (request: { closedEarly: Promise<number> }, ms: number) =>
    Promise.race([request.closedEarly.then(() => true), new Promise<boolean>((r) => setTimeout(r, ms, false))]);

  it('1. idle connections before the first token: SSE sends ": ping" so a client with a short read timeout survives a slow model', async () => {
    upstream.script = () => ({ tokens: ['finally'], firstByteDelayMs: 1200 });
    // A client (like a proxy) that gives up after 400 ms without a byte.
    const { body, pings } = await new Promise<{ body: string; pings: number }>((resolve, reject) => {
      const request = http.request(`${gateway.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ body: text, pings: text.split(': ping').length - 1 }));
      });
      request.setTimeout(400, () => request.destroy(new Error('read timeout: the connection sat idle')));
      request.on('error', reject);
      request.end(JSON.stringify({ model: 'upstream', stream: true, messages: [{ role: 'user', content: 'slow' }] }));
    });
    assert.ok(pings >= 3, `expected keep-alive pings while the model thought, got ${pings}`);
    assert.match(body, /finally/);
    assert.match(body, /data: \[DONE\]/);
  });

  it('2. silent truncation: an upstream dropping mid-stream makes the SDK throw (no [DONE]); the job route says upstream_closed', async () => {
    upstream.script = () => ({ tokens: ['a', 'b', 'c'], dropAfter: 2 });
    const stream = await client.chat.completions.create({ model: 'upstream', stream: true, messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(async () => {
      for await (const _chunk of stream) {
        // consume until the error
      }
    });
    const id = await createJob('upstream');
    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
    const last = JSON.parse(events.at(-1)!.data) as StreamEvent;
    assert.ok(last.type === 'error' && last.code === 'upstream_closed', JSON.stringify(last));
  });

  it('4. cancel before the first token and for non-streaming requests closes the upstream connection', async () => {
    upstream.script = () => ({ tokens: ['never'], firstByteDelayMs: 10_000 });
    const id = await createJob('upstream', 'thinking-job');
    const thinking = await requestFor('thinking-job');
    assert.equal((await fetch(`${gateway.url}/v1/generations/${id}`, { method: 'DELETE' })).status, 202);
    assert.ok(await closedWithin(thinking, 3000), 'a cancel while the upstream was still thinking closed its connection');

    const abort = new AbortController();
    const pending = client.chat.completions
      .create({ model: 'upstream', stream: false, messages: [{ role: 'user', content: 'non-stream-job' }] }, { signal: abort.signal })
      .catch((error: unknown) => error);
    const nonStream = await requestFor('non-stream-job');
    abort.abort();
    assert.ok((await pending) instanceof Error);
    assert.ok(await closedWithin(nonStream, 3000), 'aborting a stream:false request closed the upstream connection');
  });

  it('5. deltas only: bytes on the wire grow with the text, not with its square (SSE, OpenAI SSE, Socket.IO)', async () => {
    const measure = async (model: string) => {
      const id = await createJob(model);
      let sseBytes = 0;
      const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
      for (const event of events) sseBytes += `id: ${event.id}\nevent: ${event.event}\ndata: ${event.data}\n\n`.length;
      const text = visibleText(events.map((e) => JSON.parse(e.data) as StreamEvent));

      const openai = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'x' }] }),
      });
      const openaiBytes = (await openai.arrayBuffer()).byteLength;

      const socket = io(`${gateway.url}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true });
      let socketBytes = 0;
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      // Engine.IO packets: the frames' payloads as they came off the WebSocket.
      socket.io.engine.on('packet', (packet: { data?: unknown }) => (socketBytes += typeof packet.data === 'string' ? Buffer.byteLength(packet.data) : 0));
      const done = new Promise<void>((resolve) => socket.on('done', () => resolve()));
      await socket.emitWithAck('subscribe', { jobId: id, afterSeq: 0 });
      await done;
      socket.close();
      return { textBytes: Buffer.byteLength(text), sseBytes, openaiBytes, socketBytes };
    };
    const small = await measure('fast-small');
    const large = await measure('fast');
    console.log(`# bytes for 1,000 tokens: ${JSON.stringify(small)}; for 10,000 tokens: ${JSON.stringify(large)}`);
    // Per-token framing (seq, ids, JSON; OpenAI's own chunk format is the largest) costs a constant per event:
    // with ~5-byte demo tokens that is 20-40x the text. Resending accumulated text would cost thousands of times.
    const framing = { sseBytes: 30, openaiBytes: 50, socketBytes: 30 };
    for (const kind of ['sseBytes', 'openaiBytes', 'socketBytes'] as const) {
      const growth = large[kind] / small[kind];
      assert.ok(growth < 12, `${kind}: 10x the tokens cost ${growth.toFixed(1)}x the bytes (quadratic would be ~100x)`);
      assert.ok(large[kind] < framing[kind] * large.textBytes, `${kind}: ${large[kind]} bytes for ${large.textBytes} bytes of text`);
    }
  });

  it('6. one huge event: a 5 MB chunk reaches the client whole, split into bounded events', async () => {
    const huge = 'λ'.repeat(5 * 1024 * 1024 / 2); // 5 MB of UTF-8
    upstream.script = () => ({ tokens: ['start ', huge, ' end'] });
    const id = await createJob('upstream');
    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
    const parsed = events.map((e) => JSON.parse(e.data) as StreamEvent);
    assertCompleteStream(parsed);
    assert.equal(parsed.at(-1)?.type, 'done');
    assert.equal(visibleText(parsed), `start ${huge} end`);
    const largest = Math.max(...events.map((e) => Buffer.byteLength(e.data)));
    assert.ok(largest < 64 * 1024, `largest event ${largest} bytes`);
    const health = await fetch(`${gateway.url}/readyz`);
    assert.equal(health.status, 200, 'Redis and the api are fine afterwards');
  });

  it('8. resume after the server sent nothing yet: a client that reconnects before the first token gets the whole reply', async () => {
    upstream.script = () => ({ tokens: ['whole', ' reply'], firstByteDelayMs: 600 });
    const id = await createJob('upstream');
    const early = await readSse(`${gateway.url}/v1/generations/${id}/events`, { until: () => true, timeoutMs: 200 }).catch(() => ({ events: [] }));
    assert.equal(early.events.length, 0, 'nothing had been sent before the first disconnect');
    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
    assert.equal(visibleText(events.map((e) => JSON.parse(e.data) as StreamEvent)), 'whole reply');

    // The same over Socket.IO: subscribe, drop the socket before the first token, subscribe again.
    const socketJob = await createJob('upstream');
    const first = io(`${gateway.url}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true });
    await first.emitWithAck('subscribe', { jobId: socketJob, afterSeq: 0 });
    first.close();
    const second = io(`${gateway.url}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true });
    const received: StreamEvent[] = [];
    for (const type of ['chunk', 'usage', 'done'] as const) second.on(type, (e: StreamEvent) => received.push(e));
    await second.emitWithAck('subscribe', { jobId: socketJob, afterSeq: 0 });
    await waitFor('done', () => received.some((e) => e.type === 'done'));
    second.close();
    assert.equal(visibleText(received), 'whole reply');
  });
});

describe('known failure modes across processes', () => {
  const prefix = uniquePrefix();
  const processes: AppProcess[] = [];
  let upstream: FakeOpenAIServer;
  let apis: AppProcess[];

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'upstream', provider: 'openai-compatible', options: { baseUrl } }] }),
    };
    processes.push(...(await Promise.all([spawnApp('api', env), spawnApp('api', env), spawnApp('worker', env)])));
    apis = processes.slice(0, 2);
  });
  after(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await upstream.stop();
    await deletePrefix(prefix);
  });

  it('3. stop vs disconnect: a reader that disconnects does not cancel; an explicit stop on the other api process does', async () => {
    upstream.script = (body) => ({ tokens: Array.from({ length: 30 }, (_, i) => `${i} `), tokenDelayMs: JSON.stringify(body).includes('keep') ? 20 : 100 });
    const create = async (content: string) => {
      const response = await fetch(`${apis[0]!.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'upstream', messages: [{ role: 'user', content }] }),
      });
      return ((await response.json()) as { id: string }).id;
    };
    // A reader on api #1 goes away (page reload): the generation runs on, and resumes on api #2.
    const kept = await create('keep');
    const first = await readSse(`${apis[0]!.url}/v1/generations/${kept}/events`, { until: (e) => e.id === '3' });
    const rest = await readSse(`${apis[1]!.url}/v1/generations/${kept}/events`, { headers: { 'last-event-id': '3' } });
    const all = [...first.events, ...rest.events].map((e) => JSON.parse(e.data) as StreamEvent);
    assertCompleteStream(all);
    assert.equal(all.at(-1)?.type, 'done', 'the disconnect did not cancel');

    // An explicit stop on api #2 of a generation read on api #1 cancels it, and the upstream sees the close.
    const stopped = await create('stop');
    const reading = readSse(`${apis[0]!.url}/v1/generations/${stopped}/events`);
    const request = await waitFor('the upstream request', () => upstream.requests.find((r) => JSON.stringify(r.body).includes('stop')));
    await waitFor('a first token', async () => ((await (await fetch(`${apis[1]!.url}/v1/generations/${stopped}`)).json()) as { text: string }).text.length > 0);
    assert.equal((await fetch(`${apis[1]!.url}/v1/generations/${stopped}`, { method: 'DELETE' })).status, 202);
    const events = (await reading).events.map((e) => JSON.parse(e.data) as StreamEvent);
    assert.equal(events.at(-1)?.type, 'cancelled');
    assert.ok(await Promise.race([request.closedEarly.then(() => true), new Promise<boolean>((r) => setTimeout(r, 3000, false))]));

    // On the OpenAI route nobody can resume: a disconnect cancels.
    const before = upstream.requests.length;
    await readSse(`${apis[1]!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'upstream', stream: true, messages: [{ role: 'user', content: 'openai-drop' }] }),
      until: (_e, all) => all.length >= 3,
    });
    const openaiRequest = await waitFor('the OpenAI-route upstream request', () => upstream.requests[before]);
    assert.ok(await Promise.race([openaiRequest.closedEarly.then(() => true), new Promise<boolean>((r) => setTimeout(r, 3000, false))]));
  });

  it('7. limits correct when scaled out (two api processes share one bucket), on a Redis that forbids SCRIPT: Lua runs through EVALSHA/EVAL', async () => {
    const redis = new PrivateRedis(['--rename-command', 'SCRIPT', '']);
    await redis.start();
    const env = {
      REDIS_URL: redis.url,
      TOKENWIRE_REDIS_PREFIX: uniquePrefix(),
      TOKENWIRE_CONFIG: writeConfigFile({ limits: { requestsPerMinute: 3 }, models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 1, tokens: 5 } }] }),
    };
    const started = await Promise.allSettled([spawnApp('api', env), spawnApp('api', env), spawnApp('worker', env)]);
    const apps = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    try {
      assert.equal(apps.length, 3, 'two api processes and a worker started');
      const [first, second] = apps as [AppProcess, AppProcess];
      assert.notEqual(first.url, second.url);
      const byApi: Record<string, number[]> = { first: [], second: [] };
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const [name, api] = i % 2 === 0 ? (['first', first] as const) : (['second', second] as const);
        const response = await fetch(`${api.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'x' }] }),
        });
        statuses.push(response.status);
        byApi[name]!.push(response.status);
        await response.arrayBuffer();
      }
      // Three requests a minute for the tenant, whichever process answers: each process alone would have let three through.
      assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
      assert.deepEqual(byApi, { first: [200, 200, 429], second: [200, 429, 429] });
    } finally {
      await Promise.all(apps.map((app) => app.stop('SIGKILL')));
      await redis.destroy();
    }
  });
});
