import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';
import { PrivateRedis } from '../support/redis-server';
import { readSse } from '../support/sse-client';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';

const DEMO_OPTIONS = { tokenDelayMs: 40, tokens: 50 };

describe('Redis restart during a stream', () => {
  const redis = new PrivateRedis();
  let gateway: TestGateway;

  before(async () => {
    await redis.start();
    gateway = await startGateway({ redis: { url: redis.url }, models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }] });
  });
  after(async () => {
    await gateway.close();
    await redis.destroy();
  });

  it('the stream survives a Redis restart: no gap, no duplicate, one terminal event', async () => {
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'restart redis' }] }),
    });
    const { id } = (await created.json()) as { id: string };
    let restarting: Promise<void> | undefined;
    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`, {
      until: (event) => {
        if (event.id === '5') {
          restarting = (async () => {
            await redis.stop();
            await sleep(300);
            await redis.start();
          })();
        }
        return false;
      },
    });
    await restarting;
    const parsed = events.map((e) => JSON.parse(e.data) as StreamEvent);
    assertCompleteStream(parsed);
    assert.equal(parsed.at(-1)?.type, 'done', `the stream ended with ${JSON.stringify(parsed.at(-1))}`);
    assert.equal(visibleText(parsed), new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'restart redis' }]).join(''));
  });
});
