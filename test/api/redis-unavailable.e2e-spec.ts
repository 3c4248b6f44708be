import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { PrivateRedis } from '../support/redis-server';
import { uniquePrefix } from '../support/redis';
import { waitFor } from '../support/wait';

/** Redis trouble is an error answer to the request that met it, never the end of the api process. */
describe('the non-streaming chat route when Redis fails', () => {
  const redis = new PrivateRedis();
  let api: AppProcess;
  let exited: Promise<unknown>;

  before(async () => {
    await redis.start();
    api = await spawnApp('api', {
      REDIS_URL: redis.url,
      TOKENWIRE_REDIS_PREFIX: uniquePrefix(),
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'demo', provider: 'demo', options: {} }] }),
    });
    exited = new Promise((resolve) => api.child.once('exit', resolve));
  });
  after(async () => {
    await api.stop('SIGKILL');
    await redis.destroy();
  });

  const chat = () =>
    fetch(`${api.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', stream: false, messages: [{ role: 'user', content: 'x' }] }),
      signal: AbortSignal.timeout(60_000),
    });
  const alive = () => Promise.race([exited.then(() => false), fetch(`${api.url}/healthz`).then((r) => r.ok)]);

  it('a failing read of the event log answers 503 with an error body, and the api lives', async () => {
    // The job is accepted (Redis takes writes), but reading its log fails: XRANGE is forbidden.
    const admin = new Redis(redis.url);
    try {
      await admin.call('ACL', 'SETUSER', 'default', 'on', 'nopass', '~*', '&*', '+@all', '-xrange');
      const response = await chat();
      const body = (await response.json()) as { error?: { message?: string; code?: string } };
      assert.equal(response.status, 503, JSON.stringify(body));
      assert.ok(body.error?.message, 'the body says what went wrong');
      assert.ok(await alive(), 'the api process is still serving');
    } finally {
      await admin.call('ACL', 'SETUSER', 'default', '+@all');
      admin.disconnect();
    }
  });

  it('with Redis stopped the route answers a 5xx with an error body, and the api lives to serve once Redis is back', async () => {
    await redis.stop();
    const response = await chat();
    const body = (await response.json()) as { error?: { message?: string } };
    assert.ok(response.status >= 500, `status ${response.status}: ${JSON.stringify(body)}`);
    assert.ok(body.error?.message, 'the body says what went wrong');
    await redis.start();
    await waitFor('the api to serve again', async () => (await alive()) && (await fetch(`${api.url}/v1/models`)).ok, { timeoutMs: 20_000 });
  });
});
