import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '@tokenwire/core';
import type { StreamEvent } from '@tokenwire/contracts';
import { startGateway, type TestGateway } from '../support/gateway';
import { PrivateRedis } from '../support/redis-server';
import { readSse } from '../support/sse-client';
import { waitFor } from '../support/wait';

/** The gateway finds its Redis through a real Sentinel (redis-server --sentinel). */
describe('Redis through Sentinel', () => {
  const master = new PrivateRedis();
  const sentinelPort = new PrivateRedis(); // only for a free port
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tokenwire-sentinel-'));
  let sentinel: ChildProcess;
  let gateway: TestGateway;

  before(async () => {
    await master.start();
    await sentinelPort.start();
    const port = sentinelPort.port;
    await sentinelPort.destroy();
    const masterPort = master.port;
    const configFile = path.join(dir, 'sentinel.conf');
    writeFileSync(configFile, `port ${port}\nbind 127.0.0.1\nsentinel monitor tokenwire-master 127.0.0.1 ${master.port} 1\n`);
    sentinel = spawn('redis-server', [configFile, '--sentinel'], { stdio: 'ignore' });
    await waitFor('the sentinel to know the master', async () => {
      const client = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      client.on('error', () => undefined); // refused until the sentinel is up
      try {
        await client.connect();
        const master = (await client.call('SENTINEL', 'get-master-addr-by-name', 'tokenwire-master')) as string[] | null;
        return master?.[1] === String(masterPort);
      } finally {
        client.disconnect();
      }
    });
    const config = loadConfig({ REDIS_SENTINELS: `127.0.0.1:${port}`, REDIS_SENTINEL_NAME: 'tokenwire-master' });
    gateway = await startGateway({
      redis: { url: 'redis://unused-host:1', sentinels: config.redis.sentinels, sentinelName: config.redis.sentinelName },
      models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 1, tokens: 10 } }],
    });
  });
  after(async () => {
    await gateway?.close().catch(() => undefined);
    sentinel?.kill('SIGTERM');
    await master.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams a generation with every connection made through the sentinel', async () => {
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'via sentinel' }] }),
    });
    const { id } = (await created.json()) as { id: string };
    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
    assert.equal((JSON.parse(events.at(-1)!.data) as StreamEvent).type, 'done');
  });

  it('a malformed REDIS_SENTINELS stops start-up with a message naming the key', () => {
    assert.throws(() => loadConfig({ REDIS_SENTINELS: 'nohostport' }), /redis\.sentinels\.0\.port: expected host:port \(from env REDIS_SENTINELS="nohostport"\)/);
  });
});
