import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, workerRunning, writeConfigFile, type AppProcess } from '../support/processes';
import { readSse } from '../support/sse-client';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';
import { waitFor } from '../support/wait';

const DEMO_OPTIONS = { tokenDelayMs: 40, tokens: 40 };
const expected = (prompt: string) => new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: prompt }]).join('');

describe('graceful shutdown (SIGTERM)', () => {
  const processes: AppProcess[] = [];
  const prefixes: string[] = [];
  after(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await Promise.all(prefixes.map((p) => deletePrefix(p)));
  });
  const cluster = (extra: Record<string, string> = {}) => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }] }),
      // Long enough that a loaded machine's pauses do not lose a live worker's lock (test/reliability/lost-lock does that on purpose).
      TOKENWIRE_WORKER_LOCK_DURATION_MS: '4000',
      TOKENWIRE_WORKER_STALLED_INTERVAL_MS: '1000',
      ...extra,
    };
    return async (name: 'api' | 'worker') => {
      const app = await spawnApp(name, env);
      processes.push(app);
      return app;
    };
  };
  const create = async (url: string, content: string) => {
    const response = await fetch(`${url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content }] }),
    });
    return ((await response.json()) as { id: string }).id;
  };
  const parse = (events: { data: string }[]) => events.map((e) => JSON.parse(e.data) as StreamEvent);

  it('a worker finishes its running generation before it exits', async () => {
    const start = cluster({ TOKENWIRE_WORKER_SHUTDOWN_GRACE_MS: '20000' });
    const [api, worker] = await Promise.all([start('api'), start('worker')]);
    const id = await create(api.url!, 'finish first');
    let stopping: Promise<unknown> | undefined;
    const { events } = await readSse(`${api.url}/v1/generations/${id}/events`, {
      until: (event) => {
        if (event.id === '3') stopping = worker.stop('SIGTERM');
        return false;
      },
    });
    const parsed = parse(events);
    assertCompleteStream(parsed);
    assert.equal(parsed.at(-1)?.type, 'done');
    assert.ok(!parsed.some((e) => e.type === 'restarted'), 'no restart: the same worker finished it');
    assert.equal(visibleText(parsed), expected('finish first'));
    assert.deepEqual(await stopping, { code: null, signal: 'SIGTERM' });
  });

  it('a worker whose grace period runs out hands the generation back; another worker completes it', async () => {
    const start = cluster({ TOKENWIRE_WORKER_SHUTDOWN_GRACE_MS: '200' });
    const [api, ...workers] = await Promise.all([start('api'), start('worker'), start('worker')]);
    const id = await create(api!.url!, 'hand me back');
    const reading = readSse(`${api!.url}/v1/generations/${id}/events`);
    await readSse(`${api!.url}/v1/generations/${id}/events`, { until: (event) => event.id === '3' });
    const leaving = await workerRunning(workers, id);
    const staying = workers.find((w) => w !== leaving)!;
    await leaving.stop('SIGTERM');
    const parsed = parse((await reading).events);
    assertCompleteStream(parsed);
    assert.equal(parsed.at(-1)?.type, 'done');
    assert.ok(parsed.some((e) => e.type === 'restarted'), 'the client was told the generation restarted');
    assert.equal(visibleText(parsed), expected('hand me back'));
    assert.ok(leaving.logs.some((line) => line.msg === 'stream closed early: handed back to the queue'));
    assert.ok(staying.logs.some((line) => line.msg === 'stream completed' && line.jobId === id));
  });

  it('an api lets its open streams finish, refuses new connections meanwhile, then exits', async () => {
    const start = cluster({ TOKENWIRE_API_SHUTDOWN_GRACE_MS: '20000' });
    const [api] = await Promise.all([start('api'), start('worker')]);
    const id = await create(api.url!, 'drain me');
    let stopping: Promise<unknown> | undefined;
    let refusedWhileDraining: boolean | undefined;
    const { events } = await readSse(`${api.url}/v1/generations/${id}/events`, {
      until: (event) => {
        if (event.id === '3') {
          stopping = api.stop('SIGTERM');
          void waitFor('the api to stop accepting', () =>
            fetch(`${api.url}/healthz`).then(
              () => false,
              () => (refusedWhileDraining = true),
            ),
          ).catch(() => undefined);
        }
        return false;
      },
    });
    const parsed = parse(events);
    assertCompleteStream(parsed);
    assert.equal(parsed.at(-1)?.type, 'done', 'the open stream ran to its end');
    assert.equal(visibleText(parsed), expected('drain me'));
    assert.deepEqual(await stopping, { code: null, signal: 'SIGTERM' });
    assert.equal(refusedWhileDraining, true, 'new connections were refused while draining');
  });
});
