import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisKeys } from '@tokenwire/contracts';
import { EventLog } from '@tokenwire/core';
import { startGateway, type TestGateway } from '../support/gateway';
import { testRedisUrl, uniquePrefix, deletePrefix } from '../support/redis';
import { waitFor } from '../support/wait';

const RUNNING_TTL_S = 1;
const FINISHED_TTL_S = 30;

/**
 * What Redis keeps of a generation, and for how long: meta never expires while the generation
 * waits or runs (whatever generations.ttlSeconds says), a finished one keeps its keys for
 * generations.finishedTtlSeconds, and a completed BullMQ job does not keep the prompt.
 */
describe('generation retention in Redis', () => {
  let gateway: TestGateway;
  let redis: Redis;

  before(async () => {
    gateway = await startGateway({
      worker: { concurrency: 2 },
      generations: { ttlSeconds: RUNNING_TTL_S, finishedTtlSeconds: FINISHED_TTL_S },
      // One model slot: the second generation runs (claimed) but waits for it; the third waits in the queue.
      models: [{ name: 'slow', provider: 'demo', maxConcurrency: 1, options: { tokenDelayMs: 100, tokens: 15 } }],
    });
    redis = new Redis(testRedisUrl());
  });
  after(async () => {
    redis.disconnect();
    await gateway.close();
  });

  const keys = () => redisKeys(gateway.prefix);
  async function create(): Promise<string> {
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'a prompt the completed job must not keep' }] }),
    });
    assert.equal(created.status, 202);
    return ((await created.json()) as { id: string }).id;
  }
  const view = async (id: string) => {
    const response = await fetch(`${gateway.url}/v1/generations/${id}`);
    return { status: response.status, body: (await response.json()) as { status?: string } };
  };

  it('meta has no expiry while a generation waits in the queue or for a model slot, longer than ttlSeconds; its owner sees it end', async () => {
    const [first, waitingForSlot, queued] = [await create(), await create(), await create()];
    await waitFor('the second generation to run (waiting for the model slot) and the third to be queued', async () => {
      const [b, c] = [await view(waitingForSlot), await view(queued)];
      return b.body.status === 'running' && c.body.status === 'queued';
    });
    assert.equal(await redis.pttl(keys().meta(waitingForSlot)), -1, 'a running generation without events yet: meta does not expire');
    assert.equal(await redis.pttl(keys().meta(queued)), -1, 'a queued generation: meta does not expire');
    for (const id of [first, waitingForSlot, queued]) {
      const ended = await waitFor(`generation ${id} to end`, async () => {
        const v = await view(id);
        assert.equal(v.status, 200, `the owner can read generation ${id}`);
        return v.body.status === 'done' ? v : undefined;
      }, { timeoutMs: 20_000 });
      assert.equal(ended.body.status, 'done');
    }
  });

  it('a finished generation keeps its log, meta and marker for finishedTtlSeconds, and its completed job is gone', async () => {
    const id = await create();
    await waitFor('the generation to end', async () => (await view(id)).body.status === 'done', { timeoutMs: 20_000 });
    for (const key of [keys().eventLog(id), keys().meta(id), keys().terminalMarker(id)]) {
      const ttl = await redis.pttl(key);
      assert.ok(ttl > RUNNING_TTL_S * 1000 && ttl <= FINISHED_TTL_S * 1000, `${key}: TTL ${ttl} ms, expected the finished TTL`);
    }
    const job = `${keys().bullPrefix()}:generations:${id}`;
    await waitFor('BullMQ to remove the completed job (and its prompt)', async () => (await redis.exists(job)) === 0);
  });
});

describe('the terminal event and a generation whose meta is gone', () => {
  it('does not recreate meta (a hash without a tenant would hide the generation from its owner)', async () => {
    const prefix = uniquePrefix();
    const redis = new Redis(testRedisUrl());
    try {
      const keys = redisKeys(prefix);
      const log = new EventLog(redis, keys, { ttlSeconds: 60, maxEvents: 1000 });
      const id = randomUUID();
      const seq = await log.appendTerminal(id, { type: 'error', code: 'abandoned', message: 'test', retryable: false });
      assert.equal(seq, 1, 'the terminal event is written');
      assert.equal(await redis.exists(keys.meta(id)), 0, 'meta was not recreated');
    } finally {
      redis.disconnect();
      await deletePrefix(prefix);
    }
  });
});

describe("a running generation's event log TTL", () => {
  it('is set by the first append and renewed while events flow, so the log outlives ttlSeconds without expiring under its writer', async () => {
    const prefix = uniquePrefix();
    const redis = new Redis(testRedisUrl());
    try {
      const keys = redisKeys(prefix);
      const log = new EventLog(redis, keys, { ttlSeconds: 1, maxEvents: 1000 });
      const [id, run] = [randomUUID(), randomUUID()];
      await redis.hset(keys.meta(id), 'status', 'queued'); // the api's meta (no TTL while the generation runs)
      await log.claimRun(id, run);
      const append = log.appender(id, run);
      assert.equal(await append(1, { type: 'chunk', delta: 'a' }), 'written');
      const first = await redis.pttl(keys.eventLog(id));
      assert.ok(first > 0 && first <= 1000, `after the first append: TTL ${first} ms, expected (0, 1000]`);
      // 2.5 TTLs of appends 50 ms apart: the log must never expire or lose an event meanwhile.
      let seq = 1;
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(await append(++seq, { type: 'chunk', delta: 'a' }), 'written');
        const ttl = await redis.pttl(keys.eventLog(id));
        assert.ok(ttl > 0 && ttl <= 1000, `after seq ${seq}: TTL ${ttl} ms, expected (0, 1000]`);
      }
      assert.equal(await redis.xlen(keys.eventLog(id)), seq, 'every event is in the log');
    } finally {
      redis.disconnect();
      await deletePrefix(prefix);
    }
  });
});
