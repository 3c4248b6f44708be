import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { redisKeys, type StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';
import { PrivateRedisCluster } from '../support/redis-cluster';
import { readSse } from '../support/sse-client';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';
import { waitFor } from '../support/wait';

// 150 tokens 40 ms apart: about 6 s, so the slot moves mid-stream.
const SLOW = { tokenDelayMs: 40, tokens: 150 };

/**
 * Resharding under a live stream: the generation's slot (its log, its keys and its shard channel)
 * moves to another master mid-stream. Redis drops the api's SSUBSCRIBE on the old owner; the
 * api's periodic slots refresh finds the new owner, subscribes there and re-reads the log, so the
 * reader still gets every event once and the terminal event.
 */
describe('Redis Cluster resharding', () => {
  const cluster = new PrivateRedisCluster();
  let gateway: TestGateway;

  before(async () => {
    await cluster.start();
    gateway = await startGateway({ redis: { clusterNodes: cluster.nodes }, models: [{ name: 'slow', provider: 'demo', options: SLOW }] });
  });
  after(async () => {
    await gateway?.close().catch(() => undefined);
    await cluster.stop();
  });

  it("a generation's slot migrating to another master mid-stream: the reader follows it to the end", async () => {
    const response = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'reshard' }] }),
    });
    const { id } = (await response.json()) as { id: string };
    const log = redisKeys(gateway.prefix).eventLog(id);
    let received = 0;
    const reading = readSse(`${gateway.url}/v1/generations/${id}/events`, { timeoutMs: 40_000, until: (_event, all) => ((received = all.length), false) });
    await waitFor('the stream to be under way', () => received >= 15);
    const slot = await cluster.slotOf(log);
    const from = await cluster.masterOf(log);
    const to = cluster.ports.find((port) => port !== from)!;
    await cluster.migrateSlot(slot, to);
    assert.equal(await cluster.masterOf(log), to, 'the slot moved');
    const events = (await reading).events.map((e) => JSON.parse(e.data) as StreamEvent);
    assertCompleteStream(events);
    assert.equal(events.at(-1)?.type, 'done');
    // By content, not by events: a loaded worker may put two tokens into one event.
    assert.equal(visibleText(events), new DemoProvider(SLOW).replyTokens([{ role: 'user', content: 'reshard' }]).join(''));
  });
});
