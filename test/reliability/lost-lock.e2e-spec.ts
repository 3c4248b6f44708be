import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamEvent } from '@tokenwire/contracts';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, workerRunning, writeConfigFile, type AppProcess } from '../support/processes';
import { readSse } from '../support/sse-client';
import { assertCompleteStream } from '../support/stream-assertions';
import { waitFor } from '../support/wait';

/**
 * A worker that is paused past its lock (GC, SIGSTOP, a loaded machine) has lost its job:
 * another worker re-runs it, and the paused one, once it wakes, must stop its upstream call
 * and write nothing more.
 */
describe('a worker that lost its job lock', () => {
  const upstream = new FakeOpenAIServer();
  const processes: AppProcess[] = [];
  const prefix = uniquePrefix();
  let env: Record<string, string>;

  before(async () => {
    const baseUrl = await upstream.start();
    env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'slow', provider: 'openai-compatible', options: { baseUrl } }] }),
      // Short locks so the pause below outlasts one; the stalled check then hands the job to the other worker.
      TOKENWIRE_WORKER_LOCK_DURATION_MS: '1000',
      TOKENWIRE_WORKER_STALLED_INTERVAL_MS: '500',
    };
  });
  after(async () => {
    for (const p of processes) p.child.kill('SIGCONT');
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await upstream.stop();
    await deletePrefix(prefix);
  });

  it('SIGSTOP past the lock, another worker takes over, SIGCONT: one terminal event, done, and the first upstream call is closed', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 200 }, (_, i) => `t${i} `), tokenDelayMs: 50 });
    const [api, ...workers] = await Promise.all([spawnApp('api', env), spawnApp('worker', env), spawnApp('worker', env)]);
    processes.push(api!, ...workers);
    const created = await fetch(`${api!.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'pause me' }] }),
    });
    assert.equal(created.status, 202);
    const { id } = (await created.json()) as { id: string };
    let chunks = 0;
    const reading = readSse(`${api!.url}/v1/generations/${id}/events`, { until: (event) => (event.event === 'chunk' && chunks++, false) });

    const paused = await workerRunning(workers, id);
    // Paused once its run has written: then the re-run has something to take back ('restarted').
    await waitFor('the first run to write a chunk', () => chunks > 0);
    const other = workers.find((w) => w !== paused)!;
    paused.child.kill('SIGSTOP');
    await waitFor('the other worker to re-run the job', () => other.logs.some((l) => l.msg === 'first token' && l.jobId === id), { timeoutMs: 15_000 });
    paused.child.kill('SIGCONT');

    const events = (await reading).events.map((e) => JSON.parse(e.data) as StreamEvent);
    assertCompleteStream(events);
    assert.equal(events.at(-1)?.type, 'done', `the log reads ${events.map((e) => e.type).join(' ')}`);
    assert.ok(events.some((e) => e.type === 'restarted'), 'the re-run told the client it restarted');
    assert.equal(upstream.requests.length, 2, 'one upstream call per run');
    const closed = await Promise.race([upstream.requests[0]!.closedEarly, new Promise<'open'>((r) => setTimeout(r, 10_000, 'open'))]);
    assert.notEqual(closed, 'open', "the paused worker closed its upstream connection once it woke");
    await waitFor('the paused worker to log that it lost the job', () =>
      paused.logs.some((l) => l.jobId === id && l.msg === 'this run lost the generation to another; it stops and writes nothing more'),
    );
  });
});
