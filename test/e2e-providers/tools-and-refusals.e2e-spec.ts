import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { StreamEvent } from '@tokenwire/contracts';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { AnthropicProtocolServer, OllamaProtocolServer, OpenAIProtocolServer, ResponsesHttpProtocolServer, TgiProtocolServer } from '../support/protocols/http-protocol-servers';
import { ResponsesWsProtocolServer } from '../support/protocols/responses-ws-protocol-server';
import { TritonProtocolServer } from '../support/protocols/triton-protocol-server';
import type { ProtocolServer } from '../support/protocols/protocol-server';

const TOOLS: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
const CALL = { id: 'call_w1', name: 'get_weather', arguments: { city: 'Paris' } };

/** Tools through the whole gateway for every provider that has them, in the three ways a client asks; refusals for those that do not. */
describe('tools, parameters and content parts through the gateway', () => {
  const servers: Record<string, ProtocolServer> = {
    openai: new OpenAIProtocolServer(),
    'openai-responses-http': new ResponsesHttpProtocolServer(),
    'openai-responses-ws': new ResponsesWsProtocolServer(),
    ollama: new OllamaProtocolServer(),
    anthropic: new AnthropicProtocolServer(),
    tgi: new TgiProtocolServer(),
    triton: new TritonProtocolServer(),
  };
  let gateway: TestGateway;
  let client: OpenAI;

  before(async () => {
    await Promise.all(Object.values(servers).map((s) => s.start()));
    gateway = await startGateway({ models: Object.entries(servers).map(([name, server]) => ({ name, provider: server.providerType, options: server.providerOptions() })) });
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gateway.close();
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  });

  for (const model of ['openai', 'openai-responses-http', 'openai-responses-ws', 'ollama', 'anthropic']) {
    it(`${model}: a tool call comes back with id, name and JSON-string arguments, finish tool_calls (stream: false, stream: true, job)`, async () => {
      const server = servers[model]!;
      server.script = { tokens: [], toolCall: CALL };
      const request = { model, messages: [{ role: 'user' as const, content: 'weather in Paris?' }], tools: TOOLS };
      const idOk = (id: string | undefined) => (server.sendsToolCallIds === false ? typeof id === 'string' && id.length > 0 : id === CALL.id);

      const completion = await client.chat.completions.create(request);
      const choice = completion.choices[0]!;
      assert.equal(choice.finish_reason, 'tool_calls');
      const call = choice.message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall | undefined;
      assert.ok(call && idOk(call.id), JSON.stringify(choice.message));
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), CALL.arguments);
      assert.deepEqual(server.received().tools, ['get_weather']);

      const stream = await client.chat.completions.create({ ...request, stream: true });
      let args = '';
      let id: string | undefined;
      let name = '';
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
          id ??= delta.id;
          name += delta.function?.name ?? '';
          args += delta.function?.arguments ?? '';
        }
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assert.ok(idOk(id));
      assert.equal(name, 'get_weather');
      assert.deepEqual(JSON.parse(args), CALL.arguments);
      assert.equal(finish, 'tool_calls');

      const created = await fetch(`${gateway.url}/v1/generations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
      const { id: jobId } = (await created.json()) as { id: string };
      const events = (await readSse(`${gateway.url}/v1/generations/${jobId}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);
      const calls = events.flatMap((e) => (e.type === 'chunk' ? (e.toolCalls ?? []) : []));
      assert.equal(calls[0]?.name, 'get_weather');
      assert.deepEqual(JSON.parse(calls.map((c) => c.arguments ?? '').join('')), CALL.arguments);
      assert.deepEqual(events.at(-1), { ...events.at(-1), type: 'done', finishReason: 'tool_calls' });
    });
  }

  for (const model of ['tgi', 'triton']) {
    it(`${model}: a request with tools is a 400 naming the model, and nothing reaches the upstream`, async () => {
      const before = servers[model]!.requests;
      await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], tools: TOOLS }), (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.param, 'tools');
        assert.match(error.message, new RegExp(`model '${model}' \\(provider ${model}\\) cannot call tools`));
        return true;
      });
      assert.equal(servers[model]!.requests, before);
    });
  }

  it('a batch line with tools for a model without them is refused at upload, naming the line', async () => {
    const response = await fetch(`${gateway.url}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ custom_id: 'a', body: { model: 'triton', messages: [{ role: 'user', content: 'x' }], tools: TOOLS } }]),
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { message: string; param: string } };
    assert.match(body.error.message, /^line 1: model 'triton' \(provider triton\) cannot call tools/);
    assert.equal(body.error.param, 'tools');
  });

  it('an image part to a text-only model is a 400 naming the part and the model', async () => {
    await assert.rejects(
      client.chat.completions.create({
        model: 'tgi',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }],
      }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.param, 'messages[0].content[1]');
        assert.match(error.message, /model 'tgi'.*image_url/);
        return true;
      },
    );
  });

  it('a parameter the upstream has no equivalent for, or a value outside its range, is a 400 naming the field', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'anthropic', seed: 1, messages: [{ role: 'user', content: 'x' }] }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.param, 'seed');
      return true;
    });
    await assert.rejects(client.chat.completions.create({ model: 'anthropic', temperature: 1.5, messages: [{ role: 'user', content: 'x' }] }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.param, 'temperature');
      assert.match(error.message, /from 0 to 1/);
      return true;
    });
  });

  it('tgi: temperature 0 and top_p 1 (the common deterministic request) become greedy decoding TGI accepts', async () => {
    servers.tgi!.script = { tokens: ['deterministic'] };
    const completion = await client.chat.completions.create({ model: 'tgi', temperature: 0, top_p: 1, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(completion.choices[0]?.message.content, 'deterministic');
    const { params } = servers.tgi!.received();
    assert.equal(params.doSample, false);
    assert.equal(params.temperature, undefined, 'TGI refuses temperature 0');
    assert.equal(params.topP, undefined, 'TGI refuses top_p 1');
  });

  it('two text parts reach a text-only upstream joined by a newline', async () => {
    servers.tgi!.script = { tokens: ['ok'] };
    await client.chat.completions.create({ model: 'tgi', messages: [{ role: 'user', content: [{ type: 'text', text: 'part one' }, { type: 'text', text: 'part two' }] }] });
    assert.match(servers.tgi!.received().userTexts[0]!, /user: part one\npart two\nassistant:/);
  });
});
