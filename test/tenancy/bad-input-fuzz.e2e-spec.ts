import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Queue } from 'bullmq';
import { GENERATIONS_QUEUE, redisKeys } from '@tokenwire/contracts';
import { redisOptionsFromUrl } from '@tokenwire/core';
import { createApi, type RunningApi } from '@tokenwire/api';
import { testConfig } from '../support/gateway';
import { deletePrefix } from '../support/redis';
import { connectSocket, type ClientSocket } from '../support/tenants';

/**
 * Generated malformed input at every route and socket event: never a 5xx, never a
 * crash, never a job enqueued for a rejected request. Only the api runs, so every
 * accepted job stays in the queue where it can be counted.
 */
describe('bad input, generated', () => {
  const config = testConfig({ models: [{ name: 'demo', provider: 'demo', options: {} }] });
  let api: RunningApi;
  let queue: Queue;
  let socket: ClientSocket;

  before(async () => {
    api = await createApi(config, {});
    queue = new Queue(GENERATIONS_QUEUE, {
      connection: redisOptionsFromUrl(config.redis.url),
      prefix: redisKeys(config.redis.prefix).bullPrefix(),
    });
    socket = await connectSocket(api.url);
  });
  after(async () => {
    socket.close();
    await queue.close();
    await api.close();
    await deletePrefix(config.redis.prefix);
  });

  const queued = async () => Object.values(await queue.getJobCounts()).reduce((a, b) => a + b, 0);

  /** A valid request with one field replaced by something arbitrary, or arbitrary JSON outright. */
  const mutatedBody = fc.oneof(
    fc.anything(),
    fc.record({
      model: fc.oneof(fc.constant('demo'), fc.anything()),
      messages: fc.oneof(
        fc.anything(),
        fc.array(fc.record({ role: fc.oneof(fc.constantFrom('user', 'system', 'assistant', 'tool', 'robot'), fc.anything()), content: fc.anything() })),
      ),
      temperature: fc.oneof(fc.double(), fc.anything()),
      max_tokens: fc.oneof(fc.integer(), fc.anything()),
      stream: fc.anything(),
      n: fc.anything(),
    }, { requiredKeys: [] }),
  );

  it('HTTP routes answer every generated body with 2xx or 4xx, and enqueue only what they accepted', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/v1/chat/completions', '/v1/generations'), mutatedBody, async (path, value) => {
        const before = await queued();
        const raw = JSON.stringify(value);
        const response = await fetch(`${api.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: raw === undefined ? 'undefined' : raw,
          signal: AbortSignal.timeout(1000), // an accepted stream: we only need its status
        });
        await response.body?.cancel().catch(() => undefined);
        assert.ok(response.status < 500, `${path} answered ${response.status} to ${raw?.slice(0, 200)}`);
        const after = await queued();
        if (response.status >= 400) {
          assert.equal(after, before, `a rejected request enqueued a job: ${raw?.slice(0, 200)}`);
          assert.equal(response.headers.get('content-type')?.startsWith('application/json'), true);
        } else assert.equal(after, before + 1);
      }),
      { numRuns: 150 },
    );
  });

  it('raw, non-JSON bodies are 400s', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (raw) => {
        const response = await fetch(`${api.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
        await response.body?.cancel().catch(() => undefined);
        assert.ok(response.status < 500, `answered ${response.status} to ${JSON.stringify(raw)}`);
      }),
      { numRuns: 100 },
    );
  });

  it('socket events answer every generated payload through the ack and keep the connection', async () => {
    const before = await queued();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('generate', 'subscribe', 'unsubscribe', 'cancel', 'join', 'leave'), fc.anything(), async (event, payload) => {
        const ack = (await (socket.timeout(2000).emitWithAck as (e: string, p: unknown) => Promise<{ ok: boolean; error?: { code: string } }>)(event, payload));
        assert.equal(typeof ack.ok, 'boolean');
        if (!ack.ok) assert.notEqual(ack.error?.code, 'internal_error', `${event} ${JSON.stringify(payload)?.slice(0, 200)}`);
      }),
      { numRuns: 150 },
    );
    assert.ok(socket.connected);
    assert.equal(await queued(), before, 'no generated payload was a valid generate request');
  });
});
