import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { streamText } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';
import { waitFor } from '../support/wait';

/** The Vercel AI SDK (`ai` 6 + `@ai-sdk/openai-compatible` 2, both for Node ≥ 18) against Tokenwire unchanged. */
describe('Vercel AI SDK streamText', () => {
  const upstream = new FakeOpenAIServer();
  let gateway: TestGateway;
  let tokenwire: ReturnType<typeof createOpenAICompatible>;

  before(async () => {
    const baseUrl = await upstream.start();
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      upstream: { maxAttempts: 1, breakerFailureThreshold: 1000 },
      models: [{ name: 'upstream', provider: 'openai-compatible', options: { baseUrl } }],
    });
    tokenwire = createOpenAICompatible({ name: 'tokenwire', baseURL: `${gateway.url}/v1`, apiKey: await createKey(gateway.url, 'vercel-tenant'), includeUsage: true });
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
  });

  it('streams the text, the finish reason and the usage', async () => {
    upstream.script = () => ({ tokens: ['Vercel', ' AI', ' SDK', ' ok'], usage: { prompt_tokens: 6, completion_tokens: 4 } });
    const result = streamText({ model: tokenwire.chatModel('upstream'), system: 'be brief', prompt: 'hello' });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    assert.equal(text, 'Vercel AI SDK ok');
    assert.equal(await result.finishReason, 'stop');
    const usage = await result.usage;
    assert.equal(usage.inputTokens, 6);
    assert.equal(usage.outputTokens, 4);
    assert.deepEqual(upstream.requests.at(-1)!.body.messages, [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hello' },
    ]);
  });

  it('streams a tool call', async () => {
    upstream.script = () => ({ toolCall: { id: 'call_v', name: 'weather', argumentChunks: ['{"city":', '"Rome"}'] } });
    const { jsonSchema, tool } = await import('ai');
    const result = streamText({
      model: tokenwire.chatModel('upstream'),
      prompt: 'weather?',
      tools: { weather: tool({ description: 'Weather', inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } } }) }) },
    });
    const calls = await result.toolCalls;
    assert.deepEqual(calls.map((call) => [call.toolCallId, call.toolName, call.input]), [['call_v', 'weather', { city: 'Rome' }]]);
    assert.equal(await result.finishReason, 'tool-calls');
  });

  it('aborting streamText cancels the generation and closes the upstream', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 300 }, (_, i) => `v${i} `), tokenDelayMs: 20 });
    const before = upstream.requests.length;
    const controller = new AbortController();
    const result = streamText({ model: tokenwire.chatModel('upstream'), prompt: 'long', abortSignal: controller.signal });
    let received = 0;
    for await (const delta of result.textStream) {
      received += delta.length;
      if (received > 0) controller.abort();
    }
    assert.ok(received > 0);
    const request = await waitFor('the upstream request', () => upstream.requests[before]);
    const closedAt = await Promise.race([request.closedEarly, new Promise<'open'>((resolve) => setTimeout(resolve, 10_000, 'open'))]);
    assert.notEqual(closedAt, 'open', 'the upstream connection was closed after the abort');
  });
});
