import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { BATCH_ITEM_JOB, GENERATIONS_QUEUE, redisKeys, type Batch, type BatchInputLine, type BatchOutputLine } from '@tokenwire/contracts';
import { BatchFeeder, BatchStore, batchItemJobId, redisOptionsFromUrl } from '@tokenwire/core';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { waitFor } from '../support/wait';

const ITEMS = 500;
const line = (customId: string) => JSON.stringify({ custom_id: customId, body: { model: 'demo', messages: [{ role: 'user', content: `question ${customId}` }] } });

describe('batches survive kill -9', () => {
  const processes: AppProcess[] = [];
  const prefixes: string[] = [];
  after(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await Promise.all(prefixes.map((p) => deletePrefix(p)));
  });

  it('a 500-item batch whose api and worker are killed -9 at several points: every item ends exactly once and the counts add up', async (t) => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_CONFIG: writeConfigFile({
        models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 10, tokens: 4 } }],
        worker: { concurrency: 32 },
        // Short items, many at once: most of a worker's time is spent between an item's steps, where a kill lands.
        batches: { concurrency: 24, recoverAfterMs: 1000 },
      }),
      // A killed worker's items are recovered within seconds; a live one keeps its lock on a loaded machine.
      TOKENWIRE_WORKER_LOCK_DURATION_MS: '4000',
      TOKENWIRE_WORKER_STALLED_INTERVAL_MS: '1000',
    };
    const start = async (name: 'api' | 'worker') => {
      const app = await spawnApp(name, env);
      processes.push(app);
      return app;
    };
    let [api, worker] = await Promise.all([start('api'), start('worker')]);
    const get = async (path: string) => fetch(`${api.url}${path}`);

    const ids = Array.from({ length: ITEMS }, (_, i) => `item-${i}`);
    const created = await fetch(`${api.url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/jsonl' }, body: ids.map(line).join('\n') });
    assert.equal(created.status, 200, await created.clone().text());
    const { id } = (await created.json()) as Batch;
    // The test reads Redis itself, so the kills go on while an api restarts (the worker keeps working meanwhile).
    const redis = new Redis(testRedisUrl());
    const keys = redisKeys(prefix);
    const queue = new Queue(GENERATIONS_QUEUE, { connection: redisOptionsFromUrl(testRedisUrl()), prefix: keys.bullPrefix() });
    const ended = async () => (await redis.hmget(keys.batch(id), 'completed', 'failed', 'cancelled')).reduce((sum, n) => sum + Number(n), 0);
    /** Items that have left the pending list but have neither a job nor a result: a feeder is between taking them and adding their jobs. */
    const betweenTakeAndAdd = async () => {
      const pending = new Set(await redis.lrange(keys.batchPending(id), 0, -1));
      const recorded = new Set(await redis.hkeys(keys.batchResults(id)));
      const taken = ids.map((_, i) => String(i)).filter((i) => !pending.has(i) && !recorded.has(i));
      const jobs = await Promise.all(taken.map((i) => queue.getJob(`${id}-${i}`)));
      return taken.filter((_, n) => !jobs[n]);
    };
    /** Items seen in that state at an earlier kill (until the sweep re-adds their jobs): a new window needs a new item. */
    const seenInWindow = new Set<string>();

    // The worker is stopped (SIGSTOP) at random moments and looked at: "window" kills wait until Redis shows
    // an item between being taken and its job being added (where an LPOP-then-addBulk feeder loses it),
    // "anywhere" kills land wherever the worker was. The api is killed too: once while the worker is in
    // that window, once on its own.
    const plan: Array<{ when: 'window' | 'anywhere'; api: boolean }> = [
      { when: 'window', api: false },
      { when: 'window', api: true },
      { when: 'anywhere', api: false },
      { when: 'window', api: false },
      { when: 'anywhere', api: true },
    ];
    const stats = { workerKills: 0, windowKills: 0, apiKills: 0, probes: 0 };
    let apiRestart: Promise<AppProcess> | undefined;
    try {
      for (const step of plan) {
        for (;;) {
          await sleep(Math.random() * 15);
          const pid = worker.child.pid!;
          process.kill(pid, 'SIGSTOP');
          stats.probes++;
          const between = await betweenTakeAndAdd();
          const inWindow = between.some((index) => !seenInWindow.has(index));
          if (step.when === 'anywhere' || inWindow) {
            between.forEach((index) => seenInWindow.add(index));
            await worker.stop('SIGKILL');
            stats.workerKills++;
            if (inWindow) stats.windowKills++;
            break;
          }
          process.kill(pid, 'SIGCONT');
          assert.ok((await ended()) < ITEMS, `the batch ended before the kill plan did (${JSON.stringify(stats)})`);
        }
        if (step.api) {
          api = await (apiRestart ?? Promise.resolve(api));
          await api.stop('SIGKILL');
          stats.apiKills++;
          apiRestart = start('api');
        }
        worker = await start('worker');
        // The next kill waits until the new worker has taken over (the killed one's items recovered, the batch moving again).
        const before = await ended();
        await waitFor('the batch to move on after a kill', async () => (await ended()) >= Math.min(before + 20, ITEMS), { timeoutMs: 30_000, intervalMs: 20 });
      }
      api = await (apiRestart ?? Promise.resolve(api));
    } finally {
      redis.disconnect();
      await queue.close();
    }
    assert.ok(stats.windowKills >= 3 && stats.apiKills === 2, JSON.stringify(stats));

    const done = await waitFor(`batch ${id} to end`, async () => {
      const batch = (await (await get(`/v1/batches/${id}`)).json()) as Batch;
      return batch.status === 'completed' ? batch : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 });
    const jsonl = async (path: string) => (await (await get(path)).text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as BatchOutputLine);
    const output = await jsonl(`/v1/batches/${id}/output`);
    const errors = await jsonl(`/v1/batches/${id}/errors`);
    const seen = [...output, ...errors].map((l) => l.custom_id).sort();
    assert.deepEqual(seen, [...ids].sort(), 'every custom_id once, in the output or the errors');
    assert.deepEqual(done.request_counts, { total: ITEMS, completed: output.length, failed: errors.length, cancelled: 0 });
    // An item only fails when a worker died under it twice (BullMQ gives a stalled job one more run).
    for (const error of errors) assert.equal(error.error?.code, 'abandoned', JSON.stringify(error));
    assert.ok(output.length >= ITEMS - 24, `most items completed (${output.length})`);
    const recovered = processes.flatMap((p) => p.logs).filter((l) => typeof l.msg === 'string' && /batch item (had no job|ended without a result)/.test(l.msg)).length;
    t.diagnostic(`${JSON.stringify(stats)}; ${recovered} items recovered by the sweep; ${errors.length} abandoned`);
  });
});

/**
 * The states a process leaves when it dies between two steps of feeding, set up exactly (the test
 * takes the steps itself and stops where the process would have died), then a real worker finds them.
 */
describe('batch recovery from the state a crash leaves', () => {
  const prefix = uniquePrefix();
  const processes: AppProcess[] = [];
  let redis: Redis;
  let queue: Queue;
  let store: BatchStore;
  let feeder: BatchFeeder;

  before(async () => {
    redis = new Redis(testRedisUrl());
    queue = new Queue(GENERATIONS_QUEUE, { connection: redisOptionsFromUrl(testRedisUrl()), prefix: redisKeys(prefix).bullPrefix() });
    store = new BatchStore(redis, redisKeys(prefix), 3600, 4);
    feeder = new BatchFeeder(store, queue, { attempts: 1, keepFailedJobsSeconds: 3600 });
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 1, tokens: 3 } }], batches: { recoverAfterMs: 500 } }),
    };
    processes.push(await spawnApp('worker', env));
  });
  after(async () => {
    await queue.close();
    redis.disconnect();
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await deletePrefix(prefix);
  });

  const inputs = (batchId: string, n: number): BatchInputLine[] =>
    Array.from({ length: n }, (_, i) => ({ custom_id: `${batchId}-line-${i}`, body: { model: 'demo', messages: [{ role: 'user', content: `q${i}` }] } }) as BatchInputLine);
  const ended = (batchId: string) =>
    waitFor(`batch ${batchId} to end`, async () => {
      const batch = await store.get(batchId);
      return batch?.status === 'completed' ? batch : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
  const lines = async (batchId: string, which: 'output' | 'errors') => {
    const all: BatchOutputLine[] = [];
    for await (const json of store.results(batchId, 20, which)) all.push(JSON.parse(json) as BatchOutputLine);
    return all;
  };

  it('a batch stored by an api that died before feeding it runs to the end', async () => {
    await store.create('stored-only', 'default', inputs('stored-only', 20), 4);
    const batch = await ended('stored-only');
    assert.deepEqual(batch.request_counts, { total: 20, completed: 20, failed: 0, cancelled: 0 });
    assert.equal((await lines('stored-only', 'output')).length, 20);
  });

  it('items moved in flight whose jobs were never added (the feeder died) are queued again', async () => {
    await store.create('taken-only', 'default', inputs('taken-only', 20), 4);
    assert.deepEqual(await store.take('taken-only'), [0, 1, 2, 3], 'every slot is in use, no job exists');
    const batch = await ended('taken-only');
    assert.deepEqual(batch.request_counts, { total: 20, completed: 20, failed: 0, cancelled: 0 });
    assert.deepEqual((await lines('taken-only', 'output')).map((l) => l.custom_id), inputs('taken-only', 20).map((l) => l.custom_id));
  });

  it('an in-flight item whose job ended without a result is recorded as failed (abandoned) and its slot refilled', async () => {
    await store.create('failed-job', 'default', inputs('failed-job', 20), 1);
    assert.deepEqual(await store.take('failed-job'), [0]);
    // A job BullMQ fails without the item runner recording anything (an invalid payload here; a worker killed twice under it in life).
    await queue.add(BATCH_ITEM_JOB, { batchId: 'failed-job', index: 0, tenantId: '' }, { jobId: batchItemJobId('failed-job', 0), attempts: 1 });
    const batch = await ended('failed-job');
    assert.deepEqual(batch.request_counts, { total: 20, completed: 19, failed: 1, cancelled: 0 });
    const errors = await lines('failed-job', 'errors');
    assert.deepEqual(errors.map((l) => [l.custom_id, l.error?.code]), [['failed-job-line-0', 'abandoned']]);
  });

  it('feeding an item again under its job id while the job exists adds nothing; a job run after its item was recorded does nothing', async () => {
    await store.create('twice', 'default', inputs('twice', 1), 1);
    assert.deepEqual(await store.take('twice'), [0]);
    const worker = processes[0]!;
    process.kill(worker.child.pid!, 'SIGSTOP'); // nothing runs the job while the test counts it
    try {
      await feeder.enqueue('twice', 'default', [0]);
      await feeder.enqueue('twice', 'default', [0]);
      const jobs = await queue.getJobs(['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed']);
      assert.equal(jobs.filter((j) => j.id === batchItemJobId('twice', 0)).length, 1);
    } finally {
      process.kill(worker.child.pid!, 'SIGCONT');
    }
    const batch = await ended('twice');
    assert.deepEqual(batch.request_counts, { total: 1, completed: 1, failed: 0, cancelled: 0 });
    const [first] = await lines('twice', 'output');
    // The completed job is gone (removeOnComplete); one added now runs and stops at "already recorded".
    await waitFor('the completed job to be removed', async () => (await feeder.jobState('twice', 0)) === 'unknown');
    await feeder.enqueue('twice', 'default', [0]);
    await waitFor('the late job to complete and be removed', async () => (await feeder.jobState('twice', 0)) === 'unknown');
    assert.deepEqual(await lines('twice', 'output'), [first], 'the result is the first run\'s');
    assert.deepEqual((await store.get('twice'))!.request_counts, batch.request_counts);
  });
});
