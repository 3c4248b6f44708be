import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import {
  UpstreamConnectError,
  UpstreamHttpError,
  builtInProviderFactories,
  requestRefusal,
  upstreamErrorForGrpcStatus,
  type LanguageModelProvider,
  type ProviderRequest,
} from '@tokenwire/providers';
import type { ChatMessage, GenerationParams } from '@tokenwire/contracts';
import { AnthropicProtocolServer, OllamaProtocolServer, OpenAIProtocolServer, ResponsesHttpProtocolServer, TgiProtocolServer } from '../support/protocols/http-protocol-servers';
import { TritonProtocolServer } from '../support/protocols/triton-protocol-server';
import { GrpcProtocolServer } from '../support/protocols/grpc-protocol-server';
import type { ProtocolServer } from '../support/protocols/protocol-server';

const TOOLS: NonNullable<GenerationParams['tools']> = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
/** A conversation that already called a tool and got its result. */
const HISTORY: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Weather in Paris?' },
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
  { role: 'user', content: 'Thanks' },
];
const LINK: ChatMessage[] = [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }];

async function run(provider: LanguageModelProvider, request: Partial<ProviderRequest>): Promise<void> {
  for await (const _chunk of provider.stream({ model: 'm', messages: [{ role: 'user', content: 'hi' }], params: {}, ...request }, { signal: new AbortController().signal })) {
    // the request is what is checked
  }
}

/** Each upstream gets tool history, tool_choice, image links and deterministic sampling in its own form. */
describe('request mapping per upstream', () => {
  const servers = {
    anthropic: new AnthropicProtocolServer(),
    responses: new ResponsesHttpProtocolServer(),
    ollama: new OllamaProtocolServer(),
    tgi: new TgiProtocolServer(),
    triton: new TritonProtocolServer(),
    openai: new OpenAIProtocolServer(),
  };
  const providers = {} as Record<keyof typeof servers, LanguageModelProvider>;
  before(async () => {
    for (const [name, server] of Object.entries(servers) as Array<[keyof typeof servers, ProtocolServer]>) {
      await server.start();
      providers[name] = builtInProviderFactories[server.providerType]!(server.providerOptions());
    }
  });
  after(() => Promise.all(Object.values(servers).map((s) => s.stop())));

  it('anthropic: tool calls become tool_use blocks, results tool_result blocks, required → any, a link an image url source', async () => {
    await run(providers.anthropic, { messages: HISTORY, params: { tools: TOOLS, toolChoice: 'required' } });
    const body = servers.anthropic.lastBody;
    assert.equal(body.system, 'Be brief.');
    assert.deepEqual(body.messages, [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'sunny' }] },
      { role: 'user', content: 'Thanks' },
    ]);
    assert.deepEqual(body.tool_choice, { type: 'any' });
    await run(providers.anthropic, { messages: LINK });
    assert.deepEqual((servers.anthropic.lastBody.messages as Array<{ content: unknown }>)[0]!.content, [
      { type: 'text', text: 'what is this?' },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
    ]);
  });

  it('responses: tool calls become function_call items, results function_call_output, a named tool_choice flattened, a link an input_image', async () => {
    await run(providers.responses, { messages: HISTORY, params: { tools: TOOLS, toolChoice: { type: 'function', function: { name: 'get_weather' } } } });
    const body = servers.responses.lastBody;
    assert.deepEqual(body.input, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
      { role: 'user', content: 'Thanks' },
    ]);
    assert.deepEqual(body.tool_choice, { type: 'function', name: 'get_weather' });
    assert.deepEqual(body.tools, [{ type: 'function', name: 'get_weather', parameters: TOOLS[0]!.function.parameters }]);
    await run(providers.responses, { messages: LINK });
    assert.deepEqual((servers.responses.lastBody.input as Array<{ content: unknown }>)[0]!.content, [
      { type: 'input_text', text: 'what is this?' },
      { type: 'input_image', image_url: 'https://example.com/cat.png', detail: 'auto' },
    ]);
  });

  it('ollama: tool calls carry object arguments, results name their tool; tool_choice none sends no tools; links and forced tools are refused', async () => {
    await run(providers.ollama, { messages: HISTORY, params: { tools: TOOLS } });
    const messages = servers.ollama.lastBody.messages as Array<Record<string, unknown>>;
    assert.deepEqual(messages[2], { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] });
    assert.deepEqual(messages[3], { role: 'tool', content: 'sunny', tool_name: 'get_weather' });
    assert.deepEqual(servers.ollama.received().tools, ['get_weather']);
    await run(providers.ollama, { params: { tools: TOOLS, toolChoice: 'none' } });
    assert.equal(servers.ollama.lastBody.tools, undefined);
    const caps = providers.ollama.capabilities;
    assert.equal(requestRefusal('llama', 'ollama', caps, { messages: LINK, params: {} })?.param, 'messages[0].content[1]');
    assert.equal(requestRefusal('llama', 'ollama', caps, { messages: HISTORY, params: { tools: TOOLS, toolChoice: 'required' } })?.param, 'tool_choice');
  });

  it('tgi: temperature 0 is greedy (do_sample false, no temperature), top_p 1 is left out, other values sample', async () => {
    await run(providers.tgi, { params: { temperature: 0, topP: 1 } });
    assert.deepEqual(servers.tgi.received().params.doSample, false);
    assert.equal(servers.tgi.received().params.temperature, undefined);
    assert.equal(servers.tgi.received().params.topP, undefined);
    await run(providers.tgi, { params: { temperature: 0.7, topP: 1 } });
    assert.deepEqual([servers.tgi.received().params.doSample, servers.tgi.received().params.temperature, servers.tgi.received().params.topP], [true, 0.7, undefined]);
    await run(providers.tgi, { params: { topP: 0 } });
    assert.equal(servers.tgi.received().params.doSample, false, 'top_p 0 means the likeliest token');
  });

  it('triton: temperature 0 is greedy (top_k 1, no temperature tensor), top_p 1 is left out', async () => {
    await run(providers.triton, { params: { temperature: 0, topP: 1, maxTokens: 5 } });
    const { params } = servers.triton.received();
    assert.deepEqual([params.topK, params.temperature, params.topP, params.maxTokens], [1, undefined, undefined, 5]);
  });

  it('a configured Accept-Encoding replaces identity (one header, any case), and the gzip answer is decoded', async () => {
    const provider = builtInProviderFactories['openai-compatible']!({ ...servers.openai.providerOptions(), headers: { 'Accept-Encoding': 'gzip' } });
    servers.openai.script = { tokens: ['zipped'], compress: 'gzip' };
    let text = '';
    for await (const chunk of provider.stream({ model: 'm', messages: [{ role: 'user', content: 'x' }], params: {} }, { signal: new AbortController().signal })) {
      if (chunk.type === 'text-delta') text += chunk.text;
    }
    assert.equal(text, 'zipped');
    assert.equal(servers.openai.lastHeaders['accept-encoding'], 'gzip');
  });
});

describe('an error body the upstream compressed', () => {
  const server = new OpenAIProtocolServer();
  before(() => server.start());
  after(() => server.stop());

  it('is decoded: the upstream code and param survive a gzip-compressed 400', async () => {
    const provider = builtInProviderFactories['openai-compatible']!(server.providerOptions());
    server.script = { tokens: [], compress: 'gzip', refuse: { status: 400, code: 'context_length_exceeded', message: 'too long', param: 'messages' } };
    await assert.rejects(run(provider, {}), (error: unknown) => {
      assert.ok(error instanceof UpstreamHttpError, String(error));
      assert.deepEqual([error.status, error.upstream?.code, error.upstream?.param, error.upstream?.message], [400, 'context_length_exceeded', 'messages', 'too long']);
      return true;
    });
  });
});

/** The gRPC status table (README, "Upstream errors"): against a real grpc-js server where a server can send the status. */
describe('gRPC statuses as typed errors', () => {
  const server = new GrpcProtocolServer('server-stream');
  let provider: LanguageModelProvider;
  before(async () => {
    await server.start();
    provider = builtInProviderFactories.grpc!(server.providerOptions());
  });
  after(() => server.stop());

  for (const [status, name, retryable] of [
    [429, 'RESOURCE_EXHAUSTED', true],
    [404, 'NOT_FOUND', false],
    [401, 'UNAUTHENTICATED', false],
  ] as const) {
    it(`${name} is an HTTP-${status}-like error, ${retryable ? '' : 'not '}retryable`, async () => {
      server.script = { tokens: ['x'], refuse: { status, code: name, message: `server says ${name}` } };
      await assert.rejects(run(provider, {}), (error: unknown) => {
        assert.ok(error instanceof UpstreamHttpError, String(error));
        assert.deepEqual([error.status, error.retryable, error.upstream?.code], [status, retryable, name]);
        return true;
      });
    });
  }

  it('UNAVAILABLE before any token is upstream_connect_failed (retryable)', async () => {
    const down = builtInProviderFactories.grpc!({ address: '127.0.0.1:1' });
    await assert.rejects(run(down, {}), (error: unknown) => error instanceof UpstreamConnectError && error.retryable);
  });

  it('every other status maps as the table says', () => {
    const error = (code: grpc.status, details = 'x') => Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
    const row = (code: grpc.status, afterOutput = false) => {
      const e = upstreamErrorForGrpcStatus(error(code), 'up', afterOutput);
      return [e.code, e.status, e.retryable];
    };
    assert.deepEqual(row(grpc.status.UNIMPLEMENTED), ['upstream_http_error', 501, false]);
    assert.deepEqual(row(grpc.status.DEADLINE_EXCEEDED), ['upstream_http_error', 504, true]);
    assert.deepEqual(row(grpc.status.INVALID_ARGUMENT), ['upstream_http_error', 400, false]);
    assert.deepEqual(row(grpc.status.ABORTED), ['upstream_http_error', 409, true]);
    assert.deepEqual(row(grpc.status.UNAVAILABLE, true), ['upstream_closed', undefined, false]);
    assert.deepEqual(row(grpc.status.CANCELLED), ['upstream_closed', undefined, true]);
    assert.deepEqual(row(grpc.status.RESOURCE_EXHAUSTED, true), ['upstream_http_error', 429, false]);
  });
});
