import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { TokenwireClient, TokenwireError, type GenerationStream } from '@tokenwire/client';
import type { StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { assertCompleteStream } from '../support/stream-assertions';
import { startGateway, type TestGateway } from '../support/gateway';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';
import { waitFor } from '../support/wait';

const DEMO_OPTIONS = { tokenDelayMs: 40, tokens: 50 };
const expected = (prompt: string) => new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: prompt }]).join('');

async function collect(stream: GenerationStream, onEvent?: (event: StreamEvent, all: StreamEvent[]) => void): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of stream) {
    events.push(event);
    onEvent?.(event, events);
  }
  return events;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

describe('client resumes across an api restart', () => {
  const prefix = uniquePrefix();
  const processes: AppProcess[] = [];
  let env: Record<string, string>;
  let port: number;

  before(async () => {
    port = await freePort();
    env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }] }),
    };
    processes.push(await spawnApp('worker', env));
  });
  after(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await deletePrefix(prefix);
  });

  for (const transport of ['socket', 'sse'] as const) {
    it(`${transport}: the api dies mid-stream and comes back on the same address; the stream completes with no gap or duplicate`, async () => {
      let api = await spawnApp('api', { ...env, PORT: String(port) });
      processes.push(api);
      const client = new TokenwireClient({ baseUrl: api.url!, transport });
      try {
        const prompt = `restart with ${transport}`;
        const stream = await client.generate({ model: 'demo', messages: [{ role: 'user', content: prompt }] });
        let restarting: Promise<void> | undefined;
        const events = await collect(stream, (_event, all) => {
          if (all.length === 5) {
            restarting = (async () => {
              await api.stop('SIGKILL');
              api = await spawnApp('api', { ...env, PORT: String(port) });
              processes.push(api);
            })();
          }
        });
        await restarting;
        assertCompleteStream(events);
        assert.equal(events.at(-1)?.type, 'done');
        assert.equal(stream.text, expected(prompt));
        assert.ok(events.length > 5);
      } finally {
        client.close();
        await api.stop('SIGKILL');
      }
    });
  }
});

describe('client', () => {
  let gateway: TestGateway;
  let key: string;

  before(async () => {
    gateway = await startGateway({ auth: { enabled: true, adminToken: OPERATOR_TOKEN }, models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }] });
    key = await createKey(gateway.url, 'client-tenant');
  });
  after(() => gateway.close());

  for (const transport of ['socket', 'sse'] as const) {
    it(`${transport}: cancel() stops the generation with one cancelled event`, async () => {
      const client = new TokenwireClient({ baseUrl: gateway.url, apiKey: key, transport });
      try {
        const stream = await client.generate({ model: 'demo', messages: [{ role: 'user', content: 'cancel me' }] });
        const events = await collect(stream, (event) => event.type === 'chunk' && event.seq === 2 && void stream.cancel());
        assert.equal(events.at(-1)?.type, 'cancelled');
        assert.equal((await stream.done).type, 'cancelled');
        assert.ok(events.filter((e) => e.type === 'chunk').length < DEMO_OPTIONS.tokens);
        assert.equal(await client.cancel(stream.jobId), false, 'cancelling an ended generation says so');
      } finally {
        client.close();
      }
    });
  }

  it('subscribe(jobId, afterSeq) replays only what came after', async () => {
    const client = new TokenwireClient({ baseUrl: gateway.url, apiKey: key });
    try {
      const stream = await client.generate({ model: 'demo', messages: [{ role: 'user', content: 'subscribe later' }], max_tokens: 10 });
      const all = await collect(stream);
      const other = new TokenwireClient({ baseUrl: gateway.url, apiKey: key, transport: 'sse' });
      const rest = await collect(other.subscribe(stream.jobId, { afterSeq: 6 }));
      other.close();
      assert.deepEqual(rest, all.filter((e) => e.seq > 6));
    } finally {
      client.close();
    }
  });

  it('rooms: two clients in one conversation both get the generation', async () => {
    const [alice, bob] = [new TokenwireClient({ baseUrl: gateway.url, apiKey: key }), new TokenwireClient({ baseUrl: gateway.url, apiKey: key })];
    try {
      const seen: GenerationStream[] = [];
      await alice.join('standup', (stream) => seen.push(stream));
      await bob.join('standup', (stream) => seen.push(stream));
      const stream = await alice.generate({ conversationId: 'standup', model: 'demo', messages: [{ role: 'user', content: 'team' }], max_tokens: 8 });
      await stream.done;
      await waitFor('both members to be told of the generation', () => seen.length === 2);
      assert.ok(seen.includes(stream), 'the sender is told too, with the stream generate() returned');
      const texts = await Promise.all(seen.map(async (s) => (await s.done, s.text)));
      assert.deepEqual(texts, [stream.text, stream.text]);
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('errors carry the gateway code: a bad key is refused, an unknown model is model_not_found', async () => {
    const bad = new TokenwireClient({ baseUrl: gateway.url, apiKey: 'tw_wrong' });
    await assert.rejects(bad.generate({ model: 'demo', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof TokenwireError && e.code === 'unauthorized');
    bad.close();
    const client = new TokenwireClient({ baseUrl: gateway.url, apiKey: key, transport: 'sse' });
    await assert.rejects(client.generate({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof TokenwireError && e.code === 'model_not_found' && e.status === 404);
    client.close();
  });
});
