import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { io } from 'socket.io-client';
import { Queue } from 'bullmq';
import { GENERATIONS_NAMESPACE, GENERATIONS_QUEUE, redisKeys, type Batch, type BatchOutputLine } from '@tokenwire/contracts';
import { redisOptionsFromUrl } from '@tokenwire/core';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { testRedisUrl } from '../support/redis';
import { readSse } from '../support/sse-client';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';
import { waitFor } from '../support/wait';

const line = (customId: string, model = 'fast', content = `question ${customId}`) =>
  JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content }] } });

describe('batches', () => {
  let gateway: TestGateway;
  let upstream: FakeOpenAIServer;
  let key: string;
  let otherKey: string;
  let queue: Queue;

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      worker: { concurrency: 64 },
      upstream: { maxAttempts: 1, breakerFailureThreshold: 100_000 },
      batches: { concurrency: 32, itemAttempts: 2 },
      models: [
        { name: 'fast', provider: 'demo', options: { tokenDelayMs: 0, tokens: 4 } },
        { name: 'slow', provider: 'demo', options: { tokenDelayMs: 25, tokens: 4 } },
        { name: 'slower', provider: 'demo', options: { tokenDelayMs: 60, tokens: 4 } },
        { name: 'flaky', provider: 'openai-compatible', options: { baseUrl } },
      ],
    });
    [key, otherKey] = await Promise.all([createKey(gateway.url, 'batch-tenant'), createKey(gateway.url, 'other-tenant')]);
    queue = new Queue(GENERATIONS_QUEUE, { connection: redisOptionsFromUrl(testRedisUrl()), prefix: redisKeys(gateway.prefix).bullPrefix() });
  });
  after(async () => {
    await queue.close();
    await gateway.close();
    await upstream.stop();
  });

  const api = (path: string, init: RequestInit = {}, apiKey = key) =>
    fetch(`${gateway.url}${path}`, { ...init, headers: { authorization: `Bearer ${apiKey}`, ...init.headers } });
  const submit = async (lines: string[]) => {
    const response = await api('/v1/batches', { method: 'POST', headers: { 'content-type': 'application/jsonl' }, body: lines.join('\n') });
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.json()) as Batch;
  };
  const finished = (id: string, timeoutMs = 120_000) =>
    waitFor(`batch ${id} to end`, async () => {
      const batch = (await (await api(`/v1/batches/${id}`)).json()) as Batch;
      return batch.status === 'completed' || batch.status === 'cancelled' ? batch : undefined;
    }, { timeoutMs, intervalMs: 200 });
  const jsonl = async (path: string) => (await (await api(path)).text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as BatchOutputLine);

  it('a 10,000-item batch completes with every custom_id exactly once, in input order', async () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `item-${i}`);
    const batch = await submit(ids.map((id) => line(id)));
    assert.equal(batch.request_counts.total, 10_000);
    const done = await finished(batch.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.request_counts, { total: 10_000, completed: 10_000, failed: 0, cancelled: 0 });
    const output = await jsonl(`/v1/batches/${batch.id}/output`);
    assert.deepEqual(output.map((l) => l.custom_id), ids, 'every custom_id once, in input order');
    assert.ok(output.every((l) => l.response?.status_code === 200 && (l.response.body as { object: string }).object === 'chat.completion'));
    assert.match(JSON.stringify(output[42]!.response!.body), /question item-42/);
    assert.deepEqual(await jsonl(`/v1/batches/${batch.id}/errors`), []);
  });

  it('cancelling a running batch stops the remaining items; they are in the errors as cancelled', async () => {
    const ids = Array.from({ length: 400 }, (_, i) => `c-${i}`);
    const batch = await submit(ids.map((id) => line(id, 'slow')));
    await waitFor('some items to complete', async () => ((await (await api(`/v1/batches/${batch.id}`)).json()) as Batch).request_counts.completed >= 20);
    const cancel = await api(`/v1/batches/${batch.id}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 200);
    const done = await finished(batch.id);
    const { total, completed, failed, cancelled } = done.request_counts;
    assert.equal(done.status, 'cancelled');
    assert.equal(completed + failed + cancelled, total);
    assert.ok(cancelled > 200, `${cancelled} items never ran`);
    // Nothing can run later: the batch's jobs have all ended (no job of it is queued, running or waiting for a retry).
    const live = await queue.getJobs(['waiting', 'prioritized', 'active', 'delayed']);
    assert.deepEqual(live.filter((job) => job.id?.startsWith(`${batch.id}-`)).map((job) => job.id), [], 'no job of the batch is left to run');
    const later = (await (await api(`/v1/batches/${batch.id}`)).json()) as Batch;
    assert.deepEqual(later.request_counts, done.request_counts);
    const output = await jsonl(`/v1/batches/${batch.id}/output`);
    const errors = await jsonl(`/v1/batches/${batch.id}/errors`);
    assert.equal(output.length, completed);
    assert.equal(errors.filter((l) => l.error?.code === 'cancelled').length, cancelled, 'every cancelled item is in the errors');
    assert.deepEqual([...output, ...errors].map((l) => l.custom_id).sort(), [...ids].sort(), 'every custom_id once');
    const errorFile = (await (await api(`/v1/batches/${batch.id}`)).json()) as { error_file_id: string | null };
    assert.ok(errorFile.error_file_id, 'a cancelled batch offers an error file');
    assert.deepEqual(await jsonl(`/v1/files/${errorFile.error_file_id}/content`), errors, 'the error file holds the same lines');
    assert.equal((await api(`/v1/batches/${batch.id}/cancel`, { method: 'POST' })).status, 409);
  });

  it('an item that keeps failing is retried, then reported in the errors file', async () => {
    upstream.script = (body) => (JSON.stringify(body).includes('poison') ? { status: 503 } : { tokens: ['fine'] });
    const before = upstream.requests.length;
    const batch = await submit([line('ok-1', 'flaky'), line('bad', 'flaky', 'poison'), line('ok-2', 'flaky')]);
    const done = await finished(batch.id, 30_000);
    assert.deepEqual(done.request_counts, { total: 3, completed: 2, failed: 1, cancelled: 0 });
    const errors = await jsonl(`/v1/batches/${batch.id}/errors`);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.custom_id, 'bad');
    assert.equal(errors[0]!.error?.code, 'upstream_http_error');
    const poisonCalls = upstream.requests.slice(before).filter((r) => JSON.stringify(r.body).includes('poison')).length;
    assert.equal(poisonCalls, 2, 'the failing item was tried itemAttempts times');
    assert.deepEqual((await jsonl(`/v1/batches/${batch.id}/output`)).map((l) => l.custom_id), ['ok-1', 'ok-2']);
  });

  it('progress arrives over SSE and Socket.IO until the batch ends', async () => {
    // ~240 ms an item, 32 at a time: the batch runs for well over a second of 250 ms progress polls.
    const batch = await submit(Array.from({ length: 160 }, (_, i) => line(`p-${i}`, 'slower')));
    const socket = io(`${gateway.url}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true, auth: { token: key } });
    const socketProgress: Batch[] = [];
    socket.on('batch', (b: Batch) => socketProgress.push(b));
    assert.ok((await socket.emitWithAck('subscribe-batch', { batchId: batch.id })).ok);
    const { events } = await readSse(`${gateway.url}/v1/batches/${batch.id}/events`, { headers: { authorization: `Bearer ${key}` } });
    const sseProgress = events.map((e) => JSON.parse(e.data) as Batch);
    await waitFor('the socket to see the end', () => socketProgress.at(-1)?.status === 'completed');
    socket.close();
    for (const progress of [sseProgress, socketProgress]) {
      assert.ok(progress.length >= 3, `several progress events (${progress.length})`);
      const completed = progress.map((p) => p.request_counts.completed);
      assert.deepEqual(completed, [...completed].sort((a, b) => a - b), 'counts only go up');
      assert.equal(progress.at(-1)?.status, 'completed');
      assert.equal(progress.at(-1)?.request_counts.completed, 160);
    }
  });

  it('bad uploads are 400s naming the line; another tenant sees nothing', async () => {
    const post = async (body: string, type = 'application/jsonl') => {
      const response = await api('/v1/batches', { method: 'POST', headers: { 'content-type': type }, body });
      return { status: response.status, message: ((await response.json()) as { error: { message: string } }).error.message };
    };
    assert.deepEqual(await post(`${line('a')}\n{not json`), { status: 400, message: 'line 2: not valid JSON' });
    assert.match((await post(`${line('a')}\n${line('a')}`)).message, /line 2: custom_id "a" is used twice/);
    assert.match((await post(line('a', 'no-such-model'))).message, /line 1: the model 'no-such-model' does not exist/);
    assert.match((await post(JSON.stringify({ custom_id: 'x', body: { model: 'fast', messages: [] } }))).message, /line 1: body\.messages/);
    assert.equal((await post('')).status, 400);
    const json = await api('/v1/batches', { method: 'POST', headers: { 'content-type': 'application/json' }, body: `[${line('arr-1')},${line('arr-2')}]` });
    assert.equal(json.status, 200, 'a JSON array works too');
    const { id } = (await json.json()) as Batch;
    for (const path of [`/v1/batches/${id}`, `/v1/batches/${id}/output`, `/v1/batches/${id}/errors`]) {
      assert.equal((await api(path, {}, otherKey)).status, 404, path);
    }
    assert.equal((await api(`/v1/batches/${id}/cancel`, { method: 'POST' }, otherKey)).status, 404);
  });

  it("the README's curl example (upload, poll, download) works as written", async () => {
    const readme = readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    const script = /<!-- batch-example -->\s*```bash\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(script, 'the README has the batch example');
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      env: { PATH: process.env.PATH ?? '', TOKENWIRE_URL: gateway.url, TOKENWIRE_API_KEY: key, MODEL: 'fast' },
      timeout: 60_000,
    });
    const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as BatchOutputLine);
    assert.deepEqual(lines.map((l) => l.custom_id), ['greeting', 'haiku']);
  });
});
