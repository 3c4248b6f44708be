import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { redisKeys, type StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';
import { PrivateRedisCluster } from '../support/redis-cluster';
import { readSse } from '../support/sse-client';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';
import { waitFor } from '../support/wait';

// 120 tokens 40 ms apart: about 5 s, so a failover (about 2-3 s with a 1 s node timeout) happens mid-stream.
const SLOW = { tokenDelayMs: 40, tokens: 120 };
const GENERATIONS = 12;

/**
 * A master of a real Cluster (3 masters, 3 replicas, local processes) killed mid-stream: streams on
 * the other shards go on untouched; streams on the failed shard pause until its replica takes over,
 * then go on (the worker's appends are retried, the api re-subscribes its sharded channels and
 * re-reads the logs); every generation ends exactly once, done.
 */
describe('Redis Cluster failover', () => {
  const cluster = new PrivateRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
  let gateway: TestGateway;

  before(async () => {
    await cluster.start();
    gateway = await startGateway({
      redis: { clusterNodes: cluster.nodes },
      worker: { concurrency: GENERATIONS },
      models: [{ name: 'slow', provider: 'demo', options: SLOW }],
    });
  });
  after(async () => {
    await gateway?.close().catch(() => undefined);
    await cluster.stop();
  });

  it('a master killed mid-stream: other shards unaffected, its streams resume after the replica takes over, each ends exactly once', async () => {
    const keys = redisKeys(gateway.prefix);
    // The queue's own shard is not the one killed here: BullMQ's failover is not under test.
    const queueMaster = await cluster.masterOf(`${keys.bullPrefix()}:generations:wait`);
    const ids: string[] = [];
    for (let i = 0; i < GENERATIONS; i++) {
      const response = await fetch(`${gateway.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: `failover ${i}` }] }),
      });
      ids.push(((await response.json()) as { id: string }).id);
    }
    const owners = new Map(await Promise.all(ids.map(async (id) => [id, await cluster.masterOf(keys.eventLog(id))] as const)));
    const victim = [...new Set(owners.values())].find((port) => port !== queueMaster);
    assert.ok(victim, 'some generation lives on a shard other than the queue');
    const onVictim = ids.filter((id) => owners.get(id) === victim);
    const elsewhere = ids.filter((id) => owners.get(id) !== victim);
    assert.ok(onVictim.length > 0 && elsewhere.length > 0, `generations on both kinds of shard (${onVictim.length} on the victim)`);

    const received = new Map<string, number>();
    const readers = ids.map((id) =>
      readSse(`${gateway.url}/v1/generations/${id}/events`, {
        timeoutMs: 60_000,
        until: (_event, all) => (received.set(id, all.length), false),
      }).then(({ events }) => events.map((e) => JSON.parse(e.data) as StreamEvent)),
    );
    await waitFor('every stream to be under way', () => ids.every((id) => (received.get(id) ?? 0) >= 10), { timeoutMs: 30_000 });

    cluster.kill(victim);
    const killedAt = Date.now();
    await cluster.waitForFailover();
    const failoverMs = Date.now() - killedAt;

    const streams = new Map(ids.map((id, i) => [id, readers[i]!] as const));
    for (const id of ids) {
      const events = await streams.get(id)!;
      assertCompleteStream(events);
      assert.equal(events.at(-1)?.type, 'done', `generation ${id} (${owners.get(id) === victim ? 'on the failed shard' : 'elsewhere'}) ended done`);
      const prompt = `failover ${ids.indexOf(id)}`;
      assert.equal(visibleText(events), new DemoProvider(SLOW).replyTokens([{ role: 'user', content: prompt }]).join(''));
    }
    // Exactly one terminal event in each log too (not only in what one reader saw).
    for (const id of ids) {
      const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
      assert.equal(events.map((e) => JSON.parse(e.data) as StreamEvent).filter((e) => ['done', 'error', 'cancelled'].includes(e.type)).length, 1);
    }
    console.log(`failover took ${failoverMs} ms; ${onVictim.length} of ${GENERATIONS} generations on the failed shard`);
  });
});
