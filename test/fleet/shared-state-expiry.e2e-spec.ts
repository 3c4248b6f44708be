import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { redisKeys } from '@tokenwire/contracts';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, workerRunning, writeConfigFile, type AppProcess } from '../support/processes';
import { chat, chatReply, conversation, FakeFleet, readyDeployments, startGeneration } from '../support/fleet';
import { waitFor } from '../support/wait';

const SYSTEM_PROMPT = `You are the support assistant of an online shop. ${'Answer politely and briefly. '.repeat(8)}`;
const LEASE_MS = 2_000;

/**
 * Shared routing state that outlives its owner expires by itself, with no traffic needed to
 * clean it: a dead worker's in-flight leases and old prefix-index entries. Real processes,
 * since a worker killed with SIGKILL runs no cleanup at all.
 */
describe('fleet shared state expires', () => {
  const prefix = uniquePrefix();
  const keys = redisKeys(prefix);
  const fleet = new FakeFleet();
  let redis: Redis;
  let api: AppProcess;
  let workers: AppProcess[] = [];

  before(async () => {
    redis = new Redis(testRedisUrl());
    await fleet.start(2);
    // "hold" streams for a long time (the request a worker dies holding); anything else answers at once.
    fleet.behave = (_replica, body) => {
      const messages = body.messages as Array<{ content: string }>;
      return messages.at(-1)!.content === 'hold' ? { tokens: Array.from({ length: 60 }, (_, i) => `t${i} `), tokenDelayMs: 500 } : {};
    };
    const [r0] = fleet.deployments();
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      LOG_LEVEL: 'debug',
      TOKENWIRE_CONFIG: writeConfigFile({
        models: [
          // One replica that takes one request at a time: a leaked slot would shut it for good.
          { name: 'leased', provider: 'openai-compatible', deployments: [{ ...r0, maxConcurrency: 1 }], routing: { strategy: 'least-outstanding', leaseMs: LEASE_MS, queueTimeoutMs: 30_000 }, health: { probePath: null } },
          // turnGapMs 0: the last turn's between-turns record (made at its end, after its prefix entries) would
          // otherwise still link the next turn for a moment after the index empties; this test is about the index.
          {
            name: 'short-memory',
            provider: 'openai-compatible',
            deployments: fleet.deployments(),
            routing: { strategy: 'prefix-affinity', chunkChars: 64, minMatchChunks: 4, prefixTtlSeconds: 1, turnGapMs: 0 },
            health: { probePath: null },
          },
        ],
      }),
    };
    const slowStart = { readyTimeoutMs: 60_000 };
    api = await spawnApp('api', env, slowStart);
    workers = await Promise.all([spawnApp('worker', env, slowStart), spawnApp('worker', env, slowStart)]);
  });
  after(async () => {
    await Promise.all([api?.stop('SIGKILL'), ...(workers ?? []).map((worker) => worker.stop('SIGKILL'))]);
    await fleet.stop();
    await deletePrefix(prefix);
    redis?.disconnect();
  });

  const decision = (jobId: string) =>
    waitFor(`the routing decision of job ${jobId}`, () => workers.flatMap((worker) => worker.logs).find((line) => line.msg === 'routing decision' && line.jobId === jobId));

  it('prefix-index entries expire after prefixTtlSeconds with no traffic, and routing stops preferring their replica', async (t) => {
    const first = await chatReply(api.url!, 'short-memory', { messages: conversation('expiring', 0, SYSTEM_PROMPT) });
    const indexKey = keys.fleet('short-memory', 'prefix');
    const owned = await redis.hgetall(indexKey);
    assert.ok(Object.values(owned).includes(first.text), `the index points at ${first.text}: ${JSON.stringify(owned)}`);
    // A second turn within the TTL matches its prefix.
    const second = await chatReply(api.url!, 'short-memory', { messages: conversation('expiring', 1, SYSTEM_PROMPT) });
    assert.equal(second.text, first.text);
    assert.match(String((await decision(second.jobId)).why), /longest prefix match/);

    const emptied = performance.now();
    await waitFor('the prefix index to empty by itself (no request in between)', async () => (await redis.hlen(indexKey)) === 0 && (await redis.zcard(keys.fleet('short-memory', 'prefix-expiry'))) === 0, { timeoutMs: 15_000, intervalMs: 100 });
    const tookMs = performance.now() - emptied;
    const third = await chatReply(api.url!, 'short-memory', { messages: conversation('expiring', 2, SYSTEM_PROMPT) });
    const why = String((await decision(third.jobId)).why);
    assert.match(why, /no usable prefix match/, `after expiry the old prefix no longer routes (${why})`);
    t.diagnostic(`prefix index emptied ${Math.round(tookMs)} ms after the last turn (prefixTtlSeconds 1)`);
  });

  it('a worker killed with SIGKILL while holding a replica lease does not keep its in-flight count: it expires after leaseMs, with no traffic', async (t) => {
    const id = await startGeneration(api.url!, 'leased', 'hold');
    const holder = await workerRunning(workers, id);
    assert.equal((await readyDeployments(api.url!, 'leased')).r0?.inFlight, 1, 'the running stream holds r0\u2019s one slot');
    const killedAt = performance.now();
    await holder.stop('SIGKILL');
    // Cancel the orphaned generation, so BullMQ's stalled-job recovery does not run it again on the other worker.
    assert.equal((await fetch(`${api.url}/v1/generations/${id}`, { method: 'DELETE' })).status, 202);

    // No request is sent until the count is back: the lease must expire without a pick to trigger it.
    await waitFor('r0\u2019s in-flight count to come back to 0 in /readyz', async () => (await readyDeployments(api.url!, 'leased')).r0?.inFlight === 0, { timeoutMs: 20_000, intervalMs: 100 });
    const releasedMs = performance.now() - killedAt;
    assert.equal(await redis.zcard(keys.fleet('leased', 'leases')), 0, 'the dead worker\u2019s lease is gone');
    assert.equal(await chat(api.url!, 'leased', { messages: [{ role: 'user', content: 'after the crash' }] }), 'r0', 'the replica takes a request again');
    t.diagnostic(`r0's slot released ${Math.round(releasedMs)} ms after the kill (leaseMs ${LEASE_MS})`);
  });
});
