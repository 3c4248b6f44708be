import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { StreamEvent } from '@tokenwire/contracts';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';

/** The whole path against a real OpenAI-compatible SSE upstream started by the test. */
describe('gateway in front of an OpenAI-compatible upstream', () => {
  let upstream: FakeOpenAIServer;
  let gateway: TestGateway;
  let client: OpenAI;

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    gateway = await startGateway({
      // One attempt per request: this file checks what reaches the client, not the retry policy.
      upstream: { maxAttempts: 1, breakerFailureThreshold: 1000 },
      models: [
        { name: 'upstream', provider: 'openai-compatible', upstreamModel: 'real-model', options: { baseUrl } },
        // Port 1 on loopback: nothing listens, the connection is refused.
        { name: 'unreachable', provider: 'openai-compatible', options: { baseUrl: 'http://127.0.0.1:1/v1' } },
      ],
    });
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
  });

  it('streams chunks split across single-byte TCP writes, with the final usage chunk', async () => {
    const tokens = ['Split', ' across', ' many', ' TCP', ' writes', ' — ok ✓'];
    upstream.script = () => ({ tokens, splitWrites: true, usage: { prompt_tokens: 11, completion_tokens: 6 } });
    const stream = await client.chat.completions.create({
      model: 'upstream',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, tokens.join(''));
    assert.deepEqual(usage, { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 });
    const sent = upstream.requests.at(-1)!.body;
    assert.equal(sent.model, 'real-model', 'the upstream model name is used upstream');
    assert.equal(sent.stream, true);
  });

  it('passes tool-call deltas through to the client', async () => {
    upstream.script = () => ({ toolCall: { id: 'call_1', name: 'get_weather', argumentChunks: ['{"city":', '"Paris"}'] } });
    const completion = await client.chat.completions.create({
      model: 'upstream',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
    });
    const choice = completion.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.deepEqual(choice.message.tool_calls, [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
  });

  it('an upstream 500 reaches the job stream as an error event with the upstream status', async () => {
    upstream.script = () => ({ status: 500 });
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'upstream', messages: [{ role: 'user', content: 'x' }] }),
    });
    const { id } = (await created.json()) as { id: string };
    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`);
    assert.equal(events.length, 1);
    const error = JSON.parse(events[0]!.data) as StreamEvent;
    assert.ok(error.type === 'error');
    assert.equal(error.code, 'upstream_http_error');
    assert.equal(error.status, 500);
    assert.match(error.message, /500/);
  });

  it('an upstream 503 on the OpenAI route is an OpenAI error with the upstream status', async () => {
    upstream.script = () => ({ status: 503 });
    await assert.rejects(client.chat.completions.create({ model: 'upstream', messages: [{ role: 'user', content: 'x' }] }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.InternalServerError, String(error));
      assert.equal(error.status, 503);
      assert.equal(error.code, 'upstream_http_error');
      assert.match(error.message, /HTTP 503: fake upstream failure 503/);
      return true;
    });
  });

  it('a refused upstream connection is an HTTP 502 the SDK raises before any chunk (stream: true), and the api keeps serving', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'unreachable', stream: true, messages: [{ role: 'user', content: 'x' }] }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.APIError, String(error));
      assert.equal(error.status, 502);
      assert.equal(error.code, 'upstream_connect_failed');
      assert.match(error.message, /cannot reach upstream|ECONNREFUSED/);
      return true;
    });
    upstream.script = () => ({ tokens: ['still', ' alive'] });
    const after = await client.chat.completions.create({ model: 'upstream', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(after.choices[0]?.message.content, 'still alive');
  });

  it('an upstream that drops mid-stream makes the SDK loop throw (no silent truncation)', async () => {
    upstream.script = () => ({ tokens: ['a', 'b', 'c', 'd'], dropAfter: 2 });
    const stream = await client.chat.completions.create({ model: 'upstream', stream: true, messages: [{ role: 'user', content: 'x' }] });
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    }, /upstream/);
    assert.equal(text, 'ab');
  });

  it('a client that disconnects from the OpenAI stream closes the upstream connection', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 200 }, (_, i) => `t${i} `), tokenDelayMs: 20 });
    const controller = new AbortController();
    const before = upstream.requests.length;
    const reading = readSse(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'upstream', stream: true, messages: [{ role: 'user', content: 'x' }] }),
      until: (_event, all) => all.length >= 4,
    });
    await reading;
    controller.abort();
    const request = upstream.requests[before]!;
    const closedAt = await Promise.race([request.closedEarly, new Promise<'timeout'>((r) => setTimeout(r, 5000, 'timeout'))]);
    assert.notEqual(closedAt, 'timeout', 'the upstream saw its connection close');
  });
});
