import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';

const DEMO_OPTIONS = { tokenDelayMs: 1, tokens: 30 };
const expectedText = (prompt: string) =>
  new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: prompt }]).join('');

describe('OpenAI-compatible route, driven by the official openai SDK', () => {
  let gateway: TestGateway;
  let client: OpenAI;

  before(async () => {
    gateway = await startGateway({ models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }] });
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(() => gateway.close());

  it('streams a completion chunk by chunk and ends with the full text', async () => {
    const stream = await client.chat.completions.create({
      model: 'demo',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream please' }],
    });
    let text = '';
    let chunks = 0;
    let finishReason: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, expectedText('stream please'));
    assert.ok(chunks >= 30, `expected one chunk per token, got ${chunks}`);
    assert.equal(finishReason, 'stop');
    assert.equal(usage?.completion_tokens, 30);
  });

  it('answers a non-streaming request with one chat.completion object', async () => {
    const completion = await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'all at once' }] });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.choices[0]?.message.content, expectedText('all at once'));
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.equal(completion.usage?.completion_tokens, 30);
  });

  it('honours max_tokens with finish_reason "length"', async () => {
    const completion = await client.chat.completions.create({ model: 'demo', max_tokens: 5, messages: [{ role: 'user', content: 'short' }] });
    assert.equal(completion.choices[0]?.finish_reason, 'length');
    assert.equal(completion.usage?.completion_tokens, 5);
  });

  it('lists the configured models', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['demo']);
  });

  it('rejects an invalid body with a 400 naming the bad field', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'x' }], temperature: 7 }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError);
        assert.equal(error.param, 'temperature');
        assert.match(error.message, /temperature/);
        return true;
      },
    );
  });

  it('rejects an unknown model with a 404', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-nonexistent', messages: [{ role: 'user', content: 'x' }] }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.NotFoundError);
        assert.equal(error.code, 'model_not_found');
        return true;
      },
    );
  });

  it('answers malformed JSON with a 400 in OpenAI error format', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": "demo", "messages": [',
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /JSON/);
  });

  it('answers an oversized body with a 413', async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'x'.repeat(2 * 1024 * 1024) }] }),
    });
    assert.equal(response.status, 413);
  });
});
