import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { PrivateRedis } from '../support/redis-server';
import { waitFor } from '../support/wait';

const HOLD_MS = 300;

/**
 * The OpenAI route holds its response headers for the first token (`api.streamHeaderHoldMs`). When the
 * stream cannot even be opened (here: Redis refuses the live channel's SUBSCRIBE), the request gets
 * its error at once; the hold's timer must not fire afterwards and start a stream on the answered
 * response (that threw in a timer: the api process died).
 */
describe('a stream that cannot be opened (OpenAI and Anthropic Messages routes)', () => {
  const redis = new PrivateRedis();
  let admin: Redis;
  let api: AppProcess;

  before(async () => {
    await redis.start();
    admin = new Redis(redis.url);
    api = await spawnApp('api', {
      REDIS_URL: redis.url,
      TOKENWIRE_CONFIG: writeConfigFile({ api: { streamHeaderHoldMs: HOLD_MS }, models: [{ name: 'demo', provider: 'demo' }] }),
    });
  });
  after(async () => {
    await api?.stop();
    admin?.disconnect();
    await redis.destroy();
  });

  const routes = [
    { route: '/v1/chat/completions', body: { model: 'demo', stream: true, messages: [{ role: 'user', content: 'no stream for you' }] } },
    { route: '/v1/messages', body: { model: 'demo', stream: true, max_tokens: 64, messages: [{ role: 'user', content: 'no stream for you' }] } },
  ];
  for (const { route, body } of routes) {
    it(`${route}: answers with an error and the api keeps serving`, async () => {
      // Every command still works but subscribing: the request is admitted and queued, then its stream fails to open.
      await admin.call('ACL', 'SETUSER', 'default', '-subscribe', '-ssubscribe');
      const response = await fetch(`${api.url}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify(body),
      });
      assert.ok(response.status >= 500, `an error status, got ${response.status}`);
      await response.arrayBuffer();
      const answeredAt = Date.now();

      // Past the hold (several times over), the process is still up and still answers.
      await waitFor(
        'the api to outlive the header hold by three times over',
        async () => {
          assert.equal(api.child.exitCode, null, `the api exited: ${JSON.stringify(api.logs.filter((l) => l.level === 50 || l.level === 60).slice(-3))}`);
          assert.equal((await fetch(`${api.url}/healthz`)).status, 200);
          return Date.now() - answeredAt > 3 * HOLD_MS;
        },
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      assert.equal(api.child.exitCode, null, 'the api is still running');
    });
  }
});
