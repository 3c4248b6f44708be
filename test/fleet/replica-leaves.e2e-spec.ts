import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createApi } from '@tokenwire/api';
import { createWorker } from '@tokenwire/worker';
import { redisKeys } from '@tokenwire/contracts';
import { testConfig } from '../support/gateway';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { chat, conversation, FakeFleet, readyDeployments } from '../support/fleet';
import { waitFor } from '../support/wait';

const SYSTEM_PROMPT = `You are the support assistant of an online shop. ${'Answer politely and briefly. '.repeat(8)}`;
const ROUTING = { strategy: 'prefix-affinity' as const, chunkChars: 64, minMatchChunks: 4 };

/** A replica that leaves the configuration, or is drained by its probe, stops attracting its conversations. */
describe('a replica that leaves drops its routing entries', () => {
  // One Redis prefix (so one queue) per test: a release left running by a failed test cannot take the next test's jobs.
  const prefixes: string[] = [];
  const fleet = new FakeFleet();
  let redis: Redis;
  const running: Array<{ close(): Promise<void> }> = [];

  /** An api and a worker on `prefix`, as one release of the gateway (a restart keeps Redis). */
  async function start(prefix: string, models: Array<Record<string, unknown>>): Promise<{ url: string; close(): Promise<void> }> {
    const config = testConfig({ redis: { url: testRedisUrl(), prefix }, models } as Parameters<typeof testConfig>[0]);
    const worker = await createWorker(config, {});
    const api = await createApi(config, {});
    const release = { url: api.url, close: async () => (await api.close(), await worker.close()) };
    running.push(release);
    return release;
  }
  const newPrefix = () => {
    prefixes.push(uniquePrefix());
    return prefixes.at(-1)!;
  };
  /** Prefix-index entries pointing at `replica`. */
  const entriesOf = async (prefix: string, model: string, replica: string) =>
    Object.values(await redis.hgetall(redisKeys(prefix).fleet(model, 'prefix'))).filter((owner) => owner === replica).length;

  before(async () => {
    redis = new Redis(testRedisUrl());
    await fleet.start(3);
  });
  after(async () => {
    for (const release of running) await release.close().catch(() => undefined);
    await fleet.stop();
    for (const prefix of prefixes) await deletePrefix(prefix);
    redis.disconnect();
  });

  it('a deployment removed from the configuration is forgotten at start-up: not in /readyz, no prefix entries, its conversations move', async () => {
    const model = (deployments: Array<Record<string, unknown>>) => ({ name: 'shrinking', provider: 'openai-compatible', deployments, routing: ROUTING, health: { probePath: null } });
    const prefix = newPrefix();
    const first = await start(prefix, [model(fleet.deployments())]);
    const served = await chat(first.url, 'shrinking', { messages: conversation('leaver', 0, SYSTEM_PROMPT) });
    assert.ok((await entriesOf(prefix, 'shrinking', served)) > 0, `the index points at ${served}`);
    await first.close();

    const remaining = fleet.deployments().filter((deployment) => deployment.id !== served);
    const second = await start(prefix, [model(remaining)]);
    assert.deepEqual(Object.keys(await readyDeployments(second.url, 'shrinking')).sort(), remaining.map((d) => String(d.id)).sort(), '/readyz lists only the configured deployments');
    assert.equal(await entriesOf(prefix, 'shrinking', served), 0, `no prefix entry points at the removed ${served}`);
    for (const part of ['members', 'state', 'inflight'] as const) assert.equal(await redis.hexists(redisKeys(prefix).fleet('shrinking', part), served), 0, `${part} has no ${served}`);
    const next = await chat(second.url, 'shrinking', { messages: conversation('leaver', 1, SYSTEM_PROMPT) });
    assert.notEqual(next, served);
    assert.equal(await chat(second.url, 'shrinking', { messages: conversation('leaver', 2, SYSTEM_PROMPT) }), next, 'the conversation stays where it moved');
    await second.close();
  });

  it('a replica drained by its probe drops its prefix entries (running work aside), and its conversations stay where they moved when it returns', async () => {
    const two = fleet.deployments().slice(0, 2);
    const prefix = newPrefix();
    const gateway = await start(prefix, [{ name: 'draining', provider: 'openai-compatible', deployments: two, routing: ROUTING, health: { probeIntervalMs: 100, probeTimeoutMs: 1_000 } }]);
    const served = await chat(gateway.url, 'draining', { messages: conversation('drained', 0, SYSTEM_PROMPT) });
    assert.ok((await entriesOf(prefix, 'draining', served)) > 0, `the index points at ${served}`);
    const replica = fleet.replicas[Number(served.slice(1))]!;
    replica.healthStatus = 503;
    try {
      await waitFor(`${served} to be drained`, async () => (await readyDeployments(gateway.url, 'draining'))[served]?.state === 'drained');
      await waitFor(`the prefix entries of the drained ${served} to go`, async () => (await entriesOf(prefix, 'draining', served)) === 0);
      const moved = await chat(gateway.url, 'draining', { messages: conversation('drained', 1, SYSTEM_PROMPT) });
      assert.notEqual(moved, served);
    } finally {
      replica.healthStatus = 200;
    }
    await waitFor(`${served} to be up again`, async () => (await readyDeployments(gateway.url, 'draining'))[served]?.state === 'up');
    assert.notEqual(await chat(gateway.url, 'draining', { messages: conversation('drained', 2, SYSTEM_PROMPT) }), served, 'the conversation does not go back');
    await gateway.close();
  });
});
