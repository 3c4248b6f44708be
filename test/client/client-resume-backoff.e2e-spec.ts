import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TokenwireClient, TokenwireError } from '@tokenwire/client';
import { startGateway, type TestGateway } from '../support/gateway';
import { createGeneration, waitForEnd } from '../support/long-replies';

/**
 * A real HTTP proxy in front of the api that counts the SSE requests and can answer the first
 * ones itself with an error status (an api behind a restarting load balancer).
 */
class CountingProxy {
  readonly attempts: number[] = [];
  failFirst = 0;
  failStatus = 503;
  private readonly server = http.createServer((req, res) => {
    if (req.url?.includes('/events')) {
      this.attempts.push(performance.now());
      if (this.attempts.length <= this.failFirst) {
        res.writeHead(this.failStatus, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'proxy says no', code: `http_${this.failStatus}` } }));
        return;
      }
    }
    const upstream = http.request(`${this.target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });

  constructor(private readonly target: string) {}

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The client library on a failed resume (issue #16, 7): capped exponential backoff, no retry of a 4xx, stream_expired surfaced. */
describe('client resume backoff', () => {
  let gateway: TestGateway;
  let proxy: CountingProxy;
  let proxyUrl: string;

  before(async () => {
    gateway = await startGateway({
      // Logs keep about 20 events: the 'many' model's early events are trimmed.
      generations: { maxEvents: 20 },
      worker: { coalesce: 'off' },
      models: [
        { name: 'short', provider: 'demo', options: { tokenDelayMs: 0, tokens: 8 } },
        { name: 'many', provider: 'demo', options: { tokenDelayMs: 0, tokens: 400 } },
      ],
    });
    proxy = new CountingProxy(gateway.url);
    proxyUrl = await proxy.start();
  });
  after(async () => {
    await proxy.stop();
    await gateway.close();
  });

  it('SSE: failed resumes are retried after delays that double up to the cap, then the stream completes', async () => {
    const id = await createGeneration(gateway.url, 'short');
    proxy.attempts.length = 0;
    proxy.failFirst = 6;
    proxy.failStatus = 503;
    const client = new TokenwireClient({ baseUrl: proxyUrl, transport: 'sse', reconnectDelayMs: 50, maxReconnectDelayMs: 400 });
    try {
      const stream = client.subscribe(id);
      assert.equal((await stream.done).type, 'done');
      assert.equal(proxy.attempts.length, 7, 'six failures, then the stream');
      const gaps = proxy.attempts.slice(1).map((at, i) => at - proxy.attempts[i]!);
      // Each delay is between half and all of min(400, 50 * 2^i) (equal jitter): 50, 100, 200, 400, 400, 400.
      gaps.forEach((gap, i) => assert.ok(gap >= 0.5 * Math.min(400, 50 * 2 ** i) - 5, `delay ${i + 1} was ${gap.toFixed(0)} ms: ${gaps.map((g) => g.toFixed(0)).join(', ')}`));
      assert.ok(gaps.at(-1)! >= 195, `the delays grew (${gaps.map((g) => g.toFixed(0)).join(', ')})`);
    } finally {
      client.close();
    }
  });

  it('SSE: a 4xx is never retried; its code reaches the caller', async () => {
    const id = await createGeneration(gateway.url, 'short');
    proxy.attempts.length = 0;
    proxy.failFirst = 1;
    proxy.failStatus = 429;
    const client = new TokenwireClient({ baseUrl: proxyUrl, transport: 'sse', reconnectDelayMs: 20 });
    try {
      await assert.rejects(client.subscribe(id).done, (error: TokenwireError) => error.status === 429 && error.code === 'http_429');
      assert.equal(proxy.attempts.length, 1);
    } finally {
      client.close();
    }
  });

  for (const transport of ['sse', 'socket'] as const) {
    it(`${transport}: a resume from trimmed events fails with stream_expired, once, instead of replaying a hole`, async () => {
      const id = await createGeneration(gateway.url, 'many');
      await waitForEnd(gateway.url, id);
      proxy.attempts.length = 0;
      proxy.failFirst = 0;
      // (The proxy passes plain HTTP only: sockets go to the api directly.)
      const client = new TokenwireClient({ baseUrl: transport === 'sse' ? proxyUrl : gateway.url, transport, reconnectDelayMs: 20 });
      try {
        const stream = client.subscribe(id, { afterSeq: 0 });
        await assert.rejects(stream.done, (error: TokenwireError) => error.code === 'stream_expired');
        if (transport === 'sse') assert.equal(proxy.attempts.length, 1, 'not retried');
        let iterated = 0;
        await assert.rejects(async () => {
          for await (const _ of stream) iterated++;
        }, /no longer kept|trimmed/);
        assert.equal(iterated, 0, 'no event from after the hole');
      } finally {
        client.close();
      }
    });
  }
});
