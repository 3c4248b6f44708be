import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { redisKeys } from '@tokenwire/contracts';
import { FakeDnsServer } from '../support/fake-dns-server';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { testRedisUrl } from '../support/redis';
import { chat, conversation, readyDeployments } from '../support/fleet';
import { waitFor } from '../support/wait';

const SYSTEM_PROMPT = `You are the support assistant of an online shop. ${'Answer politely and briefly. '.repeat(8)}`;
const NAME = 'vllm.fleet.test';

/**
 * A DNS-discovered fleet whose name's answer changes, served by a real DNS server: a replica
 * that vanishes from the answer leaves (state, leases and prefix entries), one that appears joins.
 */
describe('a DNS-discovered fleet follows its name', () => {
  const dns = new FakeDnsServer();
  // Three replicas on one port, each on its own loopback address, as pods behind a headless Service.
  const addresses = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
  const replicas = addresses.map(() => new FakeOpenAIServer());
  let port: number;
  let gateway: TestGateway;
  let redis: Redis;
  const id = (address: string) => `${address}:${port}`;

  before(async () => {
    await dns.start();
    port = Number(new URL(await replicas[0]!.start(addresses[0])).port);
    for (const [index, replica] of replicas.entries()) {
      if (index > 0) await replica.start(addresses[index], port);
      replica.script = () => ({ tokens: [addresses[index]!] });
    }
    dns.records[NAME] = addresses.slice(0, 2);
    gateway = await startGateway({
      models: [
        {
          name: 'discovered',
          provider: 'openai-compatible',
          discover: { dns: NAME, nameservers: [dns.address], urlTemplate: `http://{address}:${port}/v1`, refreshMs: 100 },
          routing: { strategy: 'prefix-affinity', chunkChars: 64, minMatchChunks: 4 },
          health: { probePath: null },
        },
      ],
    });
    redis = new Redis(testRedisUrl());
  });
  after(async () => {
    await gateway?.close();
    await Promise.all(replicas.map((replica) => replica.stop().catch(() => undefined)));
    await dns.stop();
    redis?.disconnect();
  });

  it('routes over the addresses the name resolves to, through the configured name server', async () => {
    const view = await waitFor('both addresses in /readyz', async () => {
      const deployments = await readyDeployments(gateway.url, 'discovered');
      return Object.keys(deployments).length === 2 ? deployments : undefined;
    });
    assert.deepEqual(Object.keys(view).sort(), [id('127.0.0.1'), id('127.0.0.2')]);
    assert.ok(dns.queries.includes(NAME), 'the name was asked of the configured server');
  });

  it('a replica that vanishes from the answer leaves: no /readyz entry, no prefix entries, its conversation moves and stays', async () => {
    const served = await chat(gateway.url, 'discovered', { messages: conversation('dns', 0, SYSTEM_PROMPT) });
    const keys = redisKeys(gateway.prefix);
    const owners = async () => Object.values(await redis.hgetall(keys.fleet('discovered', 'prefix')));
    assert.ok((await owners()).includes(id(served)), `the index points at ${served}`);

    const staying = addresses.slice(0, 2).find((address) => address !== served)!;
    dns.records[NAME] = [staying, '127.0.0.3'];
    await waitFor(`${served} to leave /readyz and 127.0.0.3 to join`, async () => {
      const listed = Object.keys(await readyDeployments(gateway.url, 'discovered')).sort();
      return listed.join() === [id(staying), id('127.0.0.3')].sort().join();
    });
    assert.ok(!(await owners()).includes(id(served)), `no prefix entry points at ${served}`);
    for (const part of ['state', 'inflight', 'failures'] as const) assert.equal(await redis.hexists(keys.fleet('discovered', part), id(served)), 0, `${part} has no ${served}`);
    const moved = await chat(gateway.url, 'discovered', { messages: conversation('dns', 1, SYSTEM_PROMPT) });
    assert.notEqual(moved, served);
    assert.equal(await chat(gateway.url, 'discovered', { messages: conversation('dns', 2, SYSTEM_PROMPT) }), moved, 'the conversation stays where it moved');
  });

  it('an empty or failed answer keeps the last known replicas', async () => {
    const before = Object.keys(await readyDeployments(gateway.url, 'discovered')).sort();
    const asked = dns.queries.length;
    delete dns.records[NAME]; // NXDOMAIN
    await waitFor('the name to be asked again', () => dns.queries.length >= asked + 4);
    assert.deepEqual(Object.keys(await readyDeployments(gateway.url, 'discovered')).sort(), before);
    assert.ok(await chat(gateway.url, 'discovered'));
  });
});
