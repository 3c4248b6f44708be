import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { GENERATIONS_NAMESPACE, type Batch, type StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';
import { PrivateRedisCluster } from '../support/redis-cluster';
import { readSse } from '../support/sse-client';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';
import { OPERATOR_TOKEN, createKey, hasTerminal, recordEvents } from '../support/tenants';
import { waitFor } from '../support/wait';

const DEMO_OPTIONS = { tokenDelayMs: 10, tokens: 20 };

/** The whole gateway on a real three-master Redis Cluster: every multi-key script and MULTI stays within one slot. */
describe('Redis Cluster', () => {
  const cluster = new PrivateRedisCluster();
  let gateway: TestGateway;
  let key: string;

  before(async () => {
    await cluster.start();
    gateway = await startGateway({
      redis: { clusterNodes: cluster.nodes },
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      tenants: { limited: { limits: { requestsPerMinute: 2 } } },
      models: [
        { name: 'demo', provider: 'demo', options: DEMO_OPTIONS },
        { name: 'slow', provider: 'demo', options: { tokenDelayMs: 50, tokens: 100 } },
      ],
    });
    key = await createKey(gateway.url, 'cluster-tenant');
  });
  after(async () => {
    await gateway?.close();
    await cluster.stop();
  });

  const post = (path: string, body: unknown, apiKey = key, type = 'application/json') =>
    fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': type, authorization: `Bearer ${apiKey}` }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('streams and resumes a generation (event log, terminal script, pub/sub)', async () => {
    const { id } = (await (await post('/v1/generations', { model: 'demo', messages: [{ role: 'user', content: 'cluster' }] })).json()) as { id: string };
    const first = await readSse(`${gateway.url}/v1/generations/${id}/events`, { headers: { authorization: `Bearer ${key}` }, until: (e) => e.id === '4' });
    const rest = await readSse(`${gateway.url}/v1/generations/${id}/events`, { headers: { authorization: `Bearer ${key}`, 'last-event-id': '4' } });
    const events = [...first.events, ...rest.events].map((e) => JSON.parse(e.data) as StreamEvent);
    assertCompleteStream(events);
    assert.equal(visibleText(events), new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'cluster' }]).join(''));
  });

  it('rooms, rate limits, cancel of a queued job and keys work', async () => {
    const socket = io(`${gateway.url}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true, auth: { token: key } });
    const events = recordEvents(socket);
    assert.ok((await socket.emitWithAck('join', { conversationId: 'c' })).ok);
    const ack = await socket.emitWithAck('generate', { conversationId: 'c', model: 'demo', messages: [{ role: 'user', content: 'room' }] });
    assert.ok(ack.ok);
    await waitFor('the room generation to end', () => hasTerminal(events.get(ack.jobId)));
    assert.equal(events.get(ack.jobId)!.at(-1)?.type, 'done');

    const running = (await (await post('/v1/generations', { model: 'slow', messages: [{ role: 'user', content: 'x' }] })).json()) as { id: string };
    const cancel = await fetch(`${gateway.url}/v1/generations/${running.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
    assert.equal(cancel.status, 202);
    const { events: cancelled } = await readSse(`${gateway.url}/v1/generations/${running.id}/events`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(JSON.parse(cancelled.at(-1)!.data).type, 'cancelled');

    const limitedKey = await createKey(gateway.url, 'limited');
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post('/v1/generations', { model: 'demo', messages: [{ role: 'user', content: 'x' }] }, limitedKey)).status);
    assert.deepEqual(statuses, [202, 202, 429]);
    socket.close();
  });

  it('runs a batch (BullMQ with a hash-tagged prefix, the batch scripts)', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ custom_id: `k${i}`, body: { model: 'demo', messages: [{ role: 'user', content: `${i}` }] } }));
    const batch = (await (await post('/v1/batches', lines.join('\n'), key, 'application/jsonl')).json()) as Batch;
    const done = await waitFor('the batch to complete', async () => {
      const view = (await (await fetch(`${gateway.url}/v1/batches/${batch.id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as Batch;
      return view.status === 'completed' ? view : undefined;
    }, { timeoutMs: 30_000 });
    assert.equal(done.request_counts.completed, 50);
  });
});
