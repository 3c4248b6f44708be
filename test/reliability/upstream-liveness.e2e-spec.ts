import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamEvent } from '@tokenwire/contracts';
import { AnthropicProtocolServer, OpenAIProtocolServer, ResponsesHttpProtocolServer } from '../support/protocols/http-protocol-servers';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { visibleText } from '../support/stream-assertions';

const STALL_MS = 400;
const FIRST_TOKEN_MS = 3_000;

/**
 * An upstream that is alive but has not started (queued, loading) sends keep-alives: SSE comments,
 * Anthropic `ping` events. Those bytes are life, so the stall timeout must not fire; only
 * `upstream.firstTokenTimeoutMs` bounds such a wait, and each timeout says what it saw.
 */
describe('upstream liveness: keep-alives, first-token timeout, in-stream overload', () => {
  let openai: OpenAIProtocolServer;
  let anthropic: AnthropicProtocolServer;
  let responses: ResponsesHttpProtocolServer;
  let gateway: TestGateway;

  before(async () => {
    openai = new OpenAIProtocolServer();
    anthropic = new AnthropicProtocolServer();
    responses = new ResponsesHttpProtocolServer();
    await Promise.all([openai.start(), anthropic.start(), responses.start()]);
    gateway = await startGateway({
      upstream: { maxAttempts: 2, retryBaseDelayMs: 20, retryMaxDelayMs: 200, stallTimeoutMs: STALL_MS, firstTokenTimeoutMs: FIRST_TOKEN_MS, breakerFailureThreshold: 1000 },
      models: [
        { name: 'vllm', provider: 'openai-compatible', options: openai.providerOptions() },
        { name: 'claude', provider: 'anthropic', options: anthropic.providerOptions() },
        { name: 'responses', provider: 'openai-compatible', options: responses.providerOptions() },
      ],
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([openai.stop(), anthropic.stop(), responses.stop()]);
  });

  async function generate(model: string): Promise<StreamEvent[]> {
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(created.status, 202, await created.clone().text());
    const { id } = (await created.json()) as { id: string };
    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
    return events.map((e) => JSON.parse(e.data) as StreamEvent);
  }

  it('an OpenAI-compatible upstream sending ": keep-alive" comments for 3x the stall timeout, then text: done', async () => {
    const before = openai.requests;
    openai.script = { tokens: ['queued', ' then', ' served'], keepAlive: { everyMs: 200, forMs: 3 * STALL_MS } };
    const events = await generate('vllm');
    assert.equal(events.at(-1)?.type, 'done', JSON.stringify(events.at(-1)));
    assert.equal(visibleText(events), 'queued then served');
    assert.equal(openai.requests - before, 1, 'one upstream call: the keep-alives were not taken for a stall and retried');
  });

  it('an Anthropic upstream sending ping events for 3x the stall timeout, then text: done', async () => {
    const before = anthropic.requests;
    anthropic.script = { tokens: ['pinged', ' then', ' served'], keepAlive: { everyMs: 200, forMs: 3 * STALL_MS } };
    const events = await generate('claude');
    assert.equal(events.at(-1)?.type, 'done', JSON.stringify(events.at(-1)));
    assert.equal(visibleText(events), 'pinged then served');
    assert.equal(anthropic.requests - before, 1);
  });

  it('keep-alives and never a token: upstream.firstTokenTimeoutMs ends it, saying keep-alives arrived', async () => {
    openai.script = { tokens: ['too late'], keepAlive: { everyMs: 200, forMs: 60_000 } };
    const started = performance.now();
    const events = await generate('vllm');
    const last = events.at(-1)!;
    assert.ok(last.type === 'error' && last.code === 'upstream_stalled', JSON.stringify(last));
    assert.match(last.message, new RegExp(`keep-alives only, no token for ${FIRST_TOKEN_MS} ms`));
    assert.doesNotMatch(last.message, /sent nothing|no bytes/);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= FIRST_TOKEN_MS, `ended after ${Math.round(elapsed)} ms, before the first-token timeout`);
    assert.ok(await Promise.race([openai.lastEarlyClose(), new Promise<false>((r) => setTimeout(r, 2_000, false))]), 'the upstream connection was closed');
  });

  it('an upstream that sends no bytes at all is still a stall, and says so', async () => {
    openai.script = { tokens: ['never'], silent: true };
    const events = await generate('vllm');
    const last = events.at(-1)!;
    assert.ok(last.type === 'error' && last.code === 'upstream_stalled', JSON.stringify(last));
    assert.match(last.message, new RegExp(`no bytes for ${STALL_MS} ms`));
  });

  it('an Anthropic overloaded_error inside the stream, before the first token, is retried: the second attempt answers', async () => {
    const before = anthropic.requests;
    anthropic.nextScripts.push({ tokens: ['unused'], errorAfter: 0 });
    anthropic.script = { tokens: ['second', ' time'] };
    const events = await generate('claude');
    assert.equal(events.at(-1)?.type, 'done', JSON.stringify(events.at(-1)));
    assert.equal(visibleText(events), 'second time');
    assert.equal(anthropic.requests - before, 2, 'the overloaded attempt, then the retry');
  });

  // The fake servers' in-stream error: OpenAI chat `{error: {type: "server_error"}}`, Responses `response.failed {code: "server_error"}`.
  for (const [model, server] of [
    ['vllm', () => openai],
    ['responses', () => responses],
  ] as const) {
    it(`${model}: an in-stream server_error before the first token is retried like a 500: the second attempt answers`, async () => {
      const upstream = server();
      const before = upstream.requests;
      upstream.nextScripts.push({ tokens: ['unused'], errorAfter: 0 });
      upstream.script = { tokens: ['retried', ' fine'] };
      const events = await generate(model);
      assert.equal(events.at(-1)?.type, 'done', JSON.stringify(events.at(-1)));
      assert.equal(visibleText(events), 'retried fine');
      assert.equal(upstream.requests - before, 2);
    });
  }
});
