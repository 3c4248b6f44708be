import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { GenerationStreamService, LiveChannelSubscriber } from '@tokenwire/api';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';
import { testRedisUrl } from '../support/redis';
import { readSse } from '../support/sse-client';
import { waitFor } from '../support/wait';

const silent = { debug() {}, info() {}, warn() {}, error() {} } as unknown as ConstructorParameters<typeof LiveChannelSubscriber>[2];

/**
 * A burst of streams opening and ending together: the live connection's (un)subscribes of one
 * event-loop turn go out as one command, and a chat stream subscribes while its job is queued.
 */
describe('streams opened in a burst', () => {
  let gateway: TestGateway;

  before(async () => {
    gateway = await startGateway({ models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 5, tokens: 8 } }] });
  });
  after(() => gateway.close());

  it('applies the subscribes and unsubscribes of one turn in the order they were asked for', async () => {
    const connection = new Redis(testRedisUrl());
    const publisher = new Redis(testRedisUrl());
    const received: string[] = [];
    const subscriber = new LiveChannelSubscriber(connection, false, silent);
    subscriber.start({ message: (channel) => received.push(channel), channels: () => [], resubscribed: () => undefined });
    const [a, b, c] = ['a', 'b', 'c'].map((name) => `burst-${randomUUID()}-${name}`) as [string, string, string];
    try {
      // One turn: a is subscribed, dropped, then b and c subscribed, a subscribed again and dropped again.
      await Promise.all([subscriber.subscribe(a), subscriber.unsubscribe(a), subscriber.subscribe(b), subscriber.subscribe(c), subscriber.subscribe(a), subscriber.unsubscribe(a)]);
      const counts = (await publisher.pubsub('NUMSUB', a, b, c)) as Array<string | number>;
      assert.deepEqual(counts.filter((_, i) => i % 2 === 1).map(Number), [0, 1, 1]);
      for (const channel of [a, b, c]) await publisher.publish(channel, 'x');
      // One connection delivers in order: once c's message is here, a's would have come before it.
      await waitFor('the message on c', () => received.includes(c));
      assert.deepEqual(received, [b, c]);
    } finally {
      await subscriber.close();
      publisher.disconnect();
    }
  });

  it('delivers every OpenAI stream of a burst whole, and leaves no subscription behind', async () => {
    const streams = gateway.api.app.get(GenerationStreamService);
    const expected = new DemoProvider({ tokens: 8 }).replyTokens([{ role: 'user', content: 'burst' }]).join('');
    const results = await Promise.all(
      Array.from({ length: 40 }, () =>
        readSse(`${gateway.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'demo', stream: true, messages: [{ role: 'user', content: 'burst' }] }),
        }),
      ),
    );
    for (const result of results) {
      assert.equal(result.status, 200);
      assert.equal(result.events.at(-1)?.data, '[DONE]');
      const chunks = result.events.slice(0, -1).map((event) => JSON.parse(event.data) as { choices: Array<{ delta: { role?: string; content?: string } }> });
      assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant', 'the first frame is the role');
      assert.equal(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''), expected);
    }
    await waitFor('every subscription released', () => streams.activeSubscriptionCount() === 0);
  });
});
