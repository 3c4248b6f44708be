import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { OPERATOR_TOKEN, connectSocket, createKey } from '../support/tenants';
import { startGateway, type TestGateway } from '../support/gateway';
import { waitFor } from '../support/wait';

const body = (content: string, model = 'slow') => JSON.stringify({ model, messages: [{ role: 'user', content }] });

describe('per-tenant limits across two api processes sharing Redis', () => {
  const prefix = uniquePrefix();
  const processes: AppProcess[] = [];
  let apis: AppProcess[];

  before(async () => {
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_AUTH_ENABLED: 'true',
      TOKENWIRE_ADMIN_TOKEN: OPERATOR_TOKEN,
      TOKENWIRE_CONFIG: writeConfigFile({
        limits: { requestsPerMinute: 1000, maxConcurrent: 1000 },
        tenants: { 'rpm-tenant': { limits: { requestsPerMinute: 10 } }, 'busy-tenant': { limits: { maxConcurrent: 3 } } },
        models: [{ name: 'slow', provider: 'demo', options: { tokenDelayMs: 50, tokens: 100 } }],
      }),
    };
    processes.push(...(await Promise.all([spawnApp('api', env), spawnApp('api', env), spawnApp('worker', env)])));
    apis = processes.slice(0, 2);
  });
  after(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await deletePrefix(prefix);
  });

  it('requests per minute hold across processes (not limit × replicas), with Retry-After', async () => {
    const key = await createKey(apis[0]!.url!, 'rpm-tenant');
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`${apis[i % 2]!.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: body(`r${i}`),
      });
      statuses.push(response.status);
      if (response.status === 429) {
        retryAfter ??= response.headers.get('retry-after');
        const error = (await response.json()) as { error: { code: string; type: string } };
        assert.equal(error.error.code, 'rate_limited');
        assert.equal(error.error.type, 'rate_limit_error');
      } else await response.body?.cancel();
    }
    assert.equal(statuses.filter((s) => s === 202).length, 10, `statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 429).length, 10);
    assert.ok(Number(retryAfter) >= 1, `Retry-After is a positive number of seconds, got ${retryAfter}`);
  });

  it('the concurrent-generation cap holds across processes; a socket gets error code rate_limited', async () => {
    const key = await createKey(apis[0]!.url!, 'busy-tenant');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${apis[i % 2]!.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: body(`c${i}`),
      });
      statuses.push(response.status);
    }
    assert.deepEqual(statuses, [202, 202, 202]);
    const socket = await connectSocket(apis[1]!.url!, key);
    try {
      const ack = await socket.emitWithAck('generate', { model: 'slow', messages: [{ role: 'user', content: 'one too many' }] });
      assert.ok(!ack.ok && ack.error.code === 'rate_limited', JSON.stringify(ack));
    } finally {
      socket.close();
    }
  });
});

describe('fairness between tenants', () => {
  let gateway: TestGateway;

  before(async () => {
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      worker: { concurrency: 2 },
      limits: { requestsPerMinute: 100_000, maxConcurrent: 1000 },
      // ~100 ms a job, 2 at a time: A's 200 jobs are still queued when B arrives.
      models: [{ name: 'quick', provider: 'demo', options: { tokenDelayMs: 25, tokens: 4 } }],
    });
  });
  after(() => gateway.close());

  it("tenant A enqueues 200 jobs; tenant B's single job starts within a bounded wait", async () => {
    const [keyA, keyB] = await Promise.all([createKey(gateway.url, 'flood-a'), createKey(gateway.url, 'polite-b')]);
    const post = async (key: string, content: string) => {
      const response = await fetch(`${gateway.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: body(content, 'quick'),
      });
      assert.equal(response.status, 202);
      return (await response.json()) as { id: string; createdAt: number };
    };
    const floodIds: string[] = [];
    for (let i = 0; i < 200; i++) floodIds.push((await post(keyA, `a${i}`)).id);
    const { id: politeId, createdAt: politeQueuedAt } = await post(keyB, 'b');
    const get = async (key: string, id: string) =>
      (await (await fetch(`${gateway.url}/v1/generations/${id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
        status: string;
        startedAt?: number;
      };
    const polite = await waitFor("B's job to finish", async () => {
      const view = await get(keyB, politeId);
      return view.status === 'done' ? view : undefined;
    }, { timeoutMs: 30_000 });
    const floodStarts = await Promise.all(floodIds.map((id) => get(keyA, id)));
    const waitingWhenBArrived = floodStarts.filter((v) => v.startedAt === undefined || v.startedAt > politeQueuedAt).length;
    const overtook = floodStarts.filter((v) => v.startedAt !== undefined && v.startedAt > politeQueuedAt && v.startedAt < polite.startedAt!).length;
    assert.ok(waitingWhenBArrived > 100, `A had a backlog when B arrived (${waitingWhenBArrived} jobs)`);
    // Strict FIFO would make B wait for that whole backlog; fair priorities let it in after what was already running.
    assert.ok(overtook <= 4, `${overtook} of A's queued jobs started while B's waited`);
  });
});
