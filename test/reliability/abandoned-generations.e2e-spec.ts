import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { GENERATIONS_QUEUE, redisKeys, type StreamEvent } from '@tokenwire/contracts';
import { redisOptionsFromUrl } from '@tokenwire/core';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { readSse } from '../support/sse-client';
import { assertCompleteStream } from '../support/stream-assertions';

/**
 * A generation whose owner died (an api killed between removing a queued job and writing
 * `cancelled`; a worker that could not reach Redis for longer than it retries) has no job and no
 * terminal event. A reaper in any worker ends it with `error {code: "abandoned"}`, and its
 * tenant's concurrency slot frees itself.
 */
describe('abandoned generations', () => {
  const prefix = uniquePrefix();
  const processes: AppProcess[] = [];
  let env: Record<string, string>;
  let queue: Queue;

  before(() => {
    env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'demo', provider: 'demo', options: { tokens: 3 } }], limits: { maxConcurrent: 1 } }),
      TOKENWIRE_GENERATION_ABANDON_AFTER_MS: '1000',
    };
    queue = new Queue(GENERATIONS_QUEUE, { connection: redisOptionsFromUrl(testRedisUrl()), prefix: redisKeys(prefix).bullPrefix() });
  });
  after(async () => {
    await queue.close();
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await deletePrefix(prefix);
  });

  const create = (api: AppProcess) =>
    fetch(`${api.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'x' }] }),
    });

  it('kill -9 of the api between removing a queued job and writing cancelled: the generation ends "abandoned" and the slot frees itself', async () => {
    // No worker yet: the generation stays queued.
    const [doomed, survivor] = await Promise.all([spawnApp('api', env), spawnApp('api', env)]);
    processes.push(doomed!, survivor!);
    const created = await create(doomed!);
    assert.equal(created.status, 202);
    const { id } = (await created.json()) as { id: string };
    assert.equal((await create(survivor!)).status, 429, 'the tenant has used its one slot');
    const reading = readSse(`${survivor!.url}/v1/generations/${id}/events`, { timeoutMs: 30_000 });

    // The state a cancel leaves when its api dies half-way: the queued job removed, no `cancelled` written.
    await (await queue.getJob(id))!.remove();
    await doomed!.stop('SIGKILL');
    processes.push(await spawnApp('worker', env));

    const events = (await reading).events.map((e) => JSON.parse(e.data) as StreamEvent);
    assertCompleteStream(events);
    const last = events.at(-1)!;
    assert.ok(last.type === 'error' && last.code === 'abandoned', JSON.stringify(last));
    const view = (await (await fetch(`${survivor!.url}/v1/generations/${id}`)).json()) as { status: string };
    assert.equal(view.status, 'error');

    const next = await create(survivor!);
    assert.equal(next.status, 202, 'the slot was freed');
    const { id: nextId } = (await next.json()) as { id: string };
    const nextEvents = (await readSse(`${survivor!.url}/v1/generations/${nextId}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);
    assert.equal(nextEvents.at(-1)?.type, 'done');
  });
});
