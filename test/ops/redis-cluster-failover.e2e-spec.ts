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
 * re-reads the logs); every generation ends exactly once, done. Then the same with the master that
 * holds the BullMQ queue (the replica of the first victim is a master by then; the cluster still has
 * a replica for every other master). Replicas take over only when the test kills their master, after
 * they caught up with it (PrivateRedisCluster.killMaster): on a loaded machine the 1 s node timeout
 * otherwise lets a CPU-starved master be voted out early, and what it accepted after that is dropped.
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

  /**
   * Starts GENERATIONS streams, kills the master `choose` picks once all are under way, waits for its
   * replica to take over, and checks every stream: complete (seqs 1..n, one terminal event, the full
   * reply) and done, in what its reader saw and in its log. Returns the failover's duration.
   */
  const streamsThroughFailover = async (run: string, choose: (owners: Map<string, number>, queueMaster: number) => number | undefined) => {
    const keys = redisKeys(gateway.prefix);
    const queueMaster = await cluster.masterOf(`${keys.bullPrefix()}:generations:wait`);
    const prompts = Array.from({ length: GENERATIONS }, (_, i) => `${run} ${i}`);
    const ids: string[] = [];
    for (const prompt of prompts) {
      const response = await fetch(`${gateway.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: prompt }] }),
      });
      ids.push(((await response.json()) as { id: string }).id);
    }
    const owners = new Map(await Promise.all(ids.map(async (id) => [id, await cluster.masterOf(keys.eventLog(id))] as const)));
    const victim = choose(owners, queueMaster);
    assert.ok(victim, 'a master to kill');

    const received = new Map<string, number>();
    const readers = ids.map((id) =>
      readSse(`${gateway.url}/v1/generations/${id}/events`, {
        timeoutMs: 60_000,
        until: (_event, all) => (received.set(id, all.length), false),
      }).then(({ events }) => events.map((e) => JSON.parse(e.data) as StreamEvent)),
    );
    await waitFor('every stream to be under way', () => ids.every((id) => (received.get(id) ?? 0) >= 10), { timeoutMs: 30_000 });

    // Once the victim's replica has everything written so far (each generation's meta, its first events):
    // what the kill may still lose is the last milliseconds of appends, which the worker sends again.
    await cluster.killMaster(victim);
    const killedAt = Date.now();
    await cluster.waitForFailover();
    const failoverMs = Date.now() - killedAt;

    for (const [i, id] of ids.entries()) {
      const events = await readers[i]!;
      assertCompleteStream(events);
      // Not `generation_lost` either: the replica had the generation's keys before the kill, so none may be lost.
      assert.equal(events.at(-1)?.type, 'done', `generation ${id} (${owners.get(id) === victim ? 'on the failed shard' : 'elsewhere'}) ended done, not ${JSON.stringify(events.at(-1))}`);
      assert.equal(visibleText(events), new DemoProvider(SLOW).replyTokens([{ role: 'user', content: prompts[i]! }]).join(''));
    }
    // Exactly one terminal event in each log too (not only in what one reader saw).
    for (const id of ids) {
      const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
      assert.equal(events.map((e) => JSON.parse(e.data) as StreamEvent).filter((e) => ['done', 'error', 'cancelled'].includes(e.type)).length, 1);
    }
    const onVictim = ids.filter((id) => owners.get(id) === victim).length;
    console.log(`${run}: failover took ${failoverMs} ms; ${onVictim} of ${GENERATIONS} generations on the failed shard`);
  };

  it('a master killed mid-stream: other shards unaffected, its streams resume after the replica takes over, each ends exactly once', async () => {
    // A shard with some of the generations but not the queue (the next test kills the queue's).
    await streamsThroughFailover('generations', (owners, queueMaster) => {
      const victim = [...new Set(owners.values())].find((port) => port !== queueMaster);
      const onVictim = [...owners.values()].filter((port) => port === victim).length;
      assert.ok(onVictim > 0 && onVictim < owners.size, `generations on the failed shard and elsewhere (${onVictim} of ${owners.size})`);
      return victim;
    });
  });

  it("the queue's master killed mid-stream (BullMQ's slot, its job locks): every generation still ends done exactly once", async () => {
    await streamsThroughFailover('queue', (_owners, queueMaster) => queueMaster);
  });
});
