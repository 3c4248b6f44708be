import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';

const CONTEXT_LENGTH_EXCEEDED = JSON.stringify({
  error: {
    message: "This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens.",
    type: 'invalid_request_error',
    param: 'messages',
    code: 'context_length_exceeded',
  },
});

/**
 * An upstream refusal before the first token reaches the `openai` SDK as the error the upstream
 * meant: its class (from the status), code, type and param, on stream true and false alike.
 */
describe('upstream errors on the OpenAI route keep their meaning', () => {
  let upstream: FakeOpenAIServer;
  let gateway: TestGateway;
  let client: OpenAI;

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    gateway = await startGateway({
      upstream: { breakerFailureThreshold: 1000, retryBaseDelayMs: 10, retryMaxDelayMs: 20 },
      models: [{ name: 'upstream', provider: 'openai-compatible', options: { baseUrl } }],
    });
    // The SDK's default retry policy (2 retries) stays on: a 400 must not be retried.
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused' });
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
  });

  for (const stream of [false, true]) {
    it(`an upstream 400 context_length_exceeded is a BadRequestError with its code and param, called once (stream: ${stream})`, async () => {
      upstream.script = () => ({ status: 400, errorBody: CONTEXT_LENGTH_EXCEEDED });
      const before = upstream.requests.length;
      await assert.rejects(client.chat.completions.create({ model: 'upstream', stream, messages: [{ role: 'user', content: 'a very long prompt' }] }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, `got ${String(error)}`);
        assert.equal(error.status, 400);
        assert.equal(error.code, 'context_length_exceeded');
        assert.equal(error.param, 'messages');
        assert.equal(error.type, 'invalid_request_error');
        assert.match(error.message, /maximum context length is 8192 tokens/);
        return true;
      });
      assert.equal(upstream.requests.length - before, 1, 'neither the worker nor the SDK retried the 400');
    });
  }

  const cases = [
    { status: 401, errorClass: OpenAI.AuthenticationError, code: 'invalid_api_key', type: 'invalid_request_error' },
    { status: 404, errorClass: OpenAI.NotFoundError, code: 'model_not_found', type: 'invalid_request_error' },
    { status: 429, errorClass: OpenAI.RateLimitError, code: 'rate_limit_exceeded', type: 'requests' },
  ] as const;
  for (const { status, errorClass, code, type } of cases) {
    for (const stream of [false, true]) {
      it(`an upstream ${status} is a ${errorClass.name} with the upstream's code (stream: ${stream})`, async () => {
        upstream.script = () => ({ status, retryAfter: '0', errorBody: JSON.stringify({ error: { message: `upstream says ${status}`, type, param: null, code } }) });
        const noRetries = client.withOptions({ maxRetries: 0 });
        await assert.rejects(noRetries.chat.completions.create({ model: 'upstream', stream, messages: [{ role: 'user', content: 'x' }] }), (error: unknown) => {
          assert.ok(error instanceof errorClass, `got ${String(error)}`);
          assert.equal(error.status, status);
          assert.equal(error.code, code);
          assert.equal(error.type, type);
          return true;
        });
      });
    }
  }

  it('the job event stream carries the upstream code and param on the error event', async () => {
    upstream.script = () => ({ status: 400, errorBody: CONTEXT_LENGTH_EXCEEDED });
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'upstream', messages: [{ role: 'user', content: 'x' }] }),
    });
    const { id } = (await created.json()) as { id: string };
    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
    assert.deepEqual(
      events.map((e) => JSON.parse(e.data) as Record<string, unknown>).map(({ type, code, status, upstreamCode, upstreamType, param, retryable }) => ({ type, code, status, upstreamCode, upstreamType, param, retryable })),
      [{ type: 'error', code: 'upstream_http_error', status: 400, upstreamCode: 'context_length_exceeded', upstreamType: 'invalid_request_error', param: 'messages', retryable: false }],
    );
  });

  it('an error after the first token is an error frame in the stream (the status is already 200)', async () => {
    upstream.script = () => ({ tokens: ['a', 'b', 'c'], dropAfter: 2 });
    const stream = await client.chat.completions.create({ model: 'upstream', stream: true, messages: [{ role: 'user', content: 'x' }] });
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    }, /upstream/);
    assert.equal(text, 'ab');
  });
});

describe('stream: true holds the response headers only so long', () => {
  let upstream: FakeOpenAIServer;
  let gateway: TestGateway;

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    gateway = await startGateway({ api: { streamHeaderHoldMs: 100 }, models: [{ name: 'slow', provider: 'openai-compatible', options: { baseUrl } }] });
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
  });

  it('a first token later than the hold gets a 200 that starts with a ping, then the tokens', async () => {
    upstream.script = () => ({ tokens: ['late', ' but', ' here'], firstByteDelayMs: 1500 });
    const result = await readSse(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'x' }] }),
      until: (event) => event.data === '[DONE]',
    });
    assert.equal(result.status, 200);
    assert.ok(result.comments.includes(' ping') || result.comments.includes('ping'), `comments: ${JSON.stringify(result.comments)}`);
    const text = result.events.filter((e) => e.data !== '[DONE]').map((e) => (JSON.parse(e.data) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? '').join('');
    assert.equal(text, 'late but here');
  });
});
