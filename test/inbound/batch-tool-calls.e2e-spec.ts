import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';
import { waitFor } from '../support/wait';

const TOOL = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } } as const;
const CALL = { id: 'call_weather_1', name: 'get_weather', argumentChunks: ['{"city":', '"Paris"}'] };
const jsonl = (lines: object[]) => `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;

/**
 * A batch line whose model calls a tool answers with the tool call, in the same shape as the
 * endpoint's non-batch route: chat `tool_calls`, Responses `function_call` items, Messages `tool_use` blocks.
 */
describe('batch results keep tool calls', () => {
  let upstream: FakeOpenAIServer;
  let gateway: TestGateway;
  let client: OpenAI;
  let apiKey: string;

  before(async () => {
    upstream = new FakeOpenAIServer();
    await upstream.start();
    upstream.script = () => ({ toolCall: CALL });
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      upstream: { maxAttempts: 1 },
      batches: { itemAttempts: 1 },
      models: [{ name: 'tooly', provider: 'openai-compatible', options: { baseUrl: upstream.baseUrl } }],
    });
    apiKey = await createKey(gateway.url, 'batch-tools-tenant');
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });
  });
  after(async () => {
    await gateway?.close();
    await upstream?.stop();
  });

  /** The SDK's files + batches flow; returns the one output line's response body. */
  async function batchBody(endpoint: '/v1/chat/completions' | '/v1/responses' | '/v1/messages', body: object): Promise<Record<string, unknown>> {
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl([{ custom_id: 'tool-line', method: 'POST', url: endpoint, body }])), 'tools.jsonl'), purpose: 'batch' });
    // The SDK's types do not list /v1/messages; the request is the same.
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: endpoint as '/v1/responses', completion_window: '24h' });
    const done = await waitFor(`the ${endpoint} batch to complete`, async () => {
      const polled = await client.batches.retrieve(batch.id);
      return polled.status === 'completed' ? polled : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    assert.equal(done.request_counts?.completed, 1, `the ${endpoint} line succeeded`);
    const lines = (await (await client.files.content(done.output_file_id!)).text()).trim().split('\n');
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]!) as { custom_id: string; response: { status_code: number; body: Record<string, unknown> } };
    assert.equal(line.custom_id, 'tool-line');
    assert.equal(line.response.status_code, 200);
    return line.response.body;
  }

  async function direct(path: string, body: object, headers: Record<string, string> = {}): Promise<Record<string, unknown>> {
    const response = await fetch(`${gateway.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, ...headers },
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 200, `${path} answered ${response.status}`);
    return (await response.json()) as Record<string, unknown>;
  }

  it('a /v1/chat/completions line carries tool_calls and finish_reason tool_calls, as the chat route does', async () => {
    const request = { model: 'tooly', messages: [{ role: 'user', content: 'weather in Paris?' }], tools: [TOOL] };
    const body = (await batchBody('/v1/chat/completions', request)) as unknown as OpenAI.ChatCompletion;
    const choice = body.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.deepEqual(choice.message.tool_calls, [{ id: CALL.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
    const live = (await direct('/v1/chat/completions', request)) as unknown as OpenAI.ChatCompletion;
    assert.deepEqual(choice, live.choices[0], 'the batch choice is the chat route\u2019s choice');
    assert.ok(upstream.requests.at(-2)?.body.tools, 'the batch line\u2019s tools reached the upstream');
  });

  it('a /v1/responses line carries the function_call item, as the Responses route does', async () => {
    const request = { model: 'tooly', input: 'weather in Paris?', tools: [{ type: 'function', name: 'get_weather', parameters: TOOL.function.parameters }] };
    const body = await batchBody('/v1/responses', request);
    const output = body.output as Array<Record<string, unknown>>;
    const call = output.find((item) => item.type === 'function_call');
    assert.ok(call, `a function_call item in ${JSON.stringify(output)}`);
    assert.equal(call.call_id, CALL.id);
    assert.equal(call.name, 'get_weather');
    assert.equal(call.arguments, '{"city":"Paris"}');
    assert.equal(body.status, 'completed');
    const live = await direct('/v1/responses', request);
    const strip = (items: Array<Record<string, unknown>>) => items.map(({ id: _id, ...rest }) => rest);
    assert.deepEqual(strip(output), strip(live.output as Array<Record<string, unknown>>), 'the batch output items are the route\u2019s (ids aside)');
  });

  it('a /v1/messages line carries the tool_use block and stop_reason tool_use, as the Messages route does', async () => {
    const request = { model: 'tooly', max_tokens: 100, messages: [{ role: 'user', content: 'weather in Paris?' }], tools: [{ name: 'get_weather', input_schema: TOOL.function.parameters }] };
    const body = await batchBody('/v1/messages', request);
    assert.equal(body.stop_reason, 'tool_use');
    assert.deepEqual(body.content, [{ type: 'tool_use', id: CALL.id, name: 'get_weather', input: { city: 'Paris' } }]);
    const live = await direct('/v1/messages', request, { 'anthropic-version': '2023-06-01' });
    assert.deepEqual(body.content, live.content);
    assert.equal(body.stop_reason, live.stop_reason);
  });
});
