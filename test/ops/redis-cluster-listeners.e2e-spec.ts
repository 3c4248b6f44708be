import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createApi, type RunningApi } from '@tokenwire/api';
import { redisKeys, type StreamEvent } from '@tokenwire/contracts';
import type { TokenwireConfigInput } from '@tokenwire/core';
import { startGateway, testConfig, type TestGateway } from '../support/gateway';
import { demoReply } from '../support/long-replies';
import { PrivateRedisCluster } from '../support/redis-cluster';
import { readSse } from '../support/sse-client';
import { visibleText } from '../support/stream-assertions';
import { waitFor } from '../support/wait';

const SLOW = { tokenDelayMs: 40, tokens: 80 };
const SETTINGS: TokenwireConfigInput = {
  // 80 tokens 40 ms apart: about 3 s, long enough to leave in the middle.
  models: [{ name: 'slow', provider: 'demo', options: SLOW }],
};

/**
 * Who still listens, on a real three-master Cluster with two api processes: the OpenAI route cancels
 * a generation its client left only when no client on any api process reads it. Live channels are
 * sharded, so a listener is counted on the shard that owns the generation, not on whichever node a
 * `PUBSUB NUMSUB` happened to reach.
 */
describe('Redis Cluster: listeners across api processes', () => {
  const cluster = new PrivateRedisCluster();
  let gateway: TestGateway;
  let second: RunningApi;
  let nodes: Redis[];

  before(async () => {
    await cluster.start();
    const settings = { ...SETTINGS, redis: { clusterNodes: cluster.nodes } };
    gateway = await startGateway(settings);
    second = await createApi(testConfig({ ...settings, redis: { clusterNodes: cluster.nodes, prefix: gateway.prefix } }), {});
    nodes = cluster.nodes.map(({ host, port }) => new Redis({ host, port }));
  });
  after(async () => {
    await Promise.all(nodes.map((node) => node.quit()));
    await second?.close();
    await gateway?.close();
    await cluster.stop();
  });

  /** A streaming OpenAI request on api 1 read for `chunks` chunks, then left. Returns the generation id. */
  const openAiClientThatLeaves = async (chunks: number) => {
    const { events } = await readSse(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'alone' }] }),
      until: (_event, all) => all.length >= chunks,
    });
    return (JSON.parse(events[0]!.data) as { id: string }).id.replace(/^chatcmpl-/, '');
  };

  const subscribers = async (command: 'NUMSUB' | 'SHARDNUMSUB', channel: string) =>
    (await Promise.all(nodes.map(async (node) => Number(((await node.call('PUBSUB', command, channel)) as [string, number])[1])))).reduce((a, b) => a + b, 0);

  it('a client leaving the OpenAI route on api 1 does not cancel while a client on api 2 reads; the generation ends done', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'listen' }] }),
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let id: string | undefined;
    while (!id) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'the OpenAI stream ended before its first chunk');
      text += decoder.decode(value, { stream: true });
      id = /"id":"chatcmpl-([^"]+)"/.exec(text)?.[1];
    }
    const channel = redisKeys(gateway.prefix).liveChannel(id);
    // A client on api 2 follows the same generation (a resumable view: leaving it never cancels).
    const otherReader = readSse(`${second.url}/v1/generations/${id}/events`).then((result) => result.events.map((e) => JSON.parse(e.data) as StreamEvent));
    await waitFor('both api processes to subscribe on the owning shard', async () => (await subscribers('SHARDNUMSUB', channel)) === 2);
    assert.equal(await subscribers('NUMSUB', channel), 0, 'no classic subscription: the live channel is sharded');

    // The OpenAI client on api 1 goes away mid-stream.
    await reader.cancel();
    const events = await otherReader;
    assert.equal(events.at(-1)?.type, 'done', 'the generation went on for the client on api 2');
    // By content, not by events: a loaded worker may put two tokens into one event.
    assert.equal(visibleText(events), demoReply(SLOW, 'listen'));
  });

  it('the last client leaving the OpenAI route cancels the generation (no other listener on any api process)', async () => {
    const id = await openAiClientThatLeaves(3);
    // Read only once it has ended: a reader on api 2 opened sooner would be "another listener", and rightly keep it going.
    await waitFor('the generation to end', async () => {
      const view = (await (await fetch(`${second.url}/v1/generations/${id}`)).json()) as { status: string };
      return ['done', 'cancelled', 'error'].includes(view.status);
    });
    const { events } = await readSse(`${second.url}/v1/generations/${id}/events`);
    assert.equal((JSON.parse(events.at(-1)!.data) as StreamEvent).type, 'cancelled');
  });

  it('with redis.clusterPubSub: classic, live channels use PUBLISH and SUBSCRIBE (the comparison switch), and the stream still ends done', async () => {
    const classic = await startGateway({ ...SETTINGS, redis: { clusterNodes: cluster.nodes, clusterPubSub: 'classic' } });
    try {
      const response = await fetch(`${classic.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'classic' }] }),
      });
      const { id } = (await response.json()) as { id: string };
      const channel = redisKeys(classic.prefix).liveChannel(id);
      const reading = readSse(`${classic.url}/v1/generations/${id}/events`);
      await waitFor('a classic subscription to the live channel', async () => (await subscribers('NUMSUB', channel)) === 1);
      assert.equal(await subscribers('SHARDNUMSUB', channel), 0);
      const events = (await reading).events.map((e) => JSON.parse(e.data) as StreamEvent);
      assert.equal(events.at(-1)?.type, 'done');
      assert.equal(visibleText(events), demoReply(SLOW, 'classic'));
    } finally {
      await classic.close();
    }
  });
});
