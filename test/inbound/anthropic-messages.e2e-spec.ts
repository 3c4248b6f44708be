import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';
import { waitFor } from '../support/wait';
import { AnthropicProtocolServer, OllamaProtocolServer, OpenAIProtocolServer, ResponsesHttpProtocolServer } from '../support/protocols/http-protocol-servers';
import type { ProtocolServer } from '../support/protocols/protocol-server';

/** `POST /v1/messages` driven by the official Anthropic SDK, over every kind of upstream. */
describe('Anthropic Messages API, driven by @anthropic-ai/sdk', () => {
  const upstream = new FakeOpenAIServer();
  const protocols: Record<string, ProtocolServer> = {
    'via-openai': new OpenAIProtocolServer(),
    'via-ollama': new OllamaProtocolServer(),
    'via-anthropic': new AnthropicProtocolServer(),
    'via-responses': new ResponsesHttpProtocolServer(),
  };
  const tokens = ['Claude', ' clients', ' welcome'];
  let gateway: TestGateway;
  let client: Anthropic;
  let key: string;

  before(async () => {
    const baseUrl = await upstream.start();
    await Promise.all(Object.values(protocols).map((s) => s.start()));
    for (const server of Object.values(protocols)) server.script = { tokens, usage: { prompt: 7, completion: tokens.length } };
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      upstream: { maxAttempts: 1, breakerFailureThreshold: 1000 },
      // One event per upstream delta, so the event sequence below is exact.
      worker: { coalesce: 'off' },
      models: [
        { name: 'upstream', provider: 'openai-compatible', upstreamModel: 'real-model', options: { baseUrl } },
        ...Object.entries(protocols).map(([name, server]) => ({ name, provider: server.providerType, options: server.providerOptions() })),
        { name: 'demo', provider: 'demo', options: { tokenDelayMs: 0, reply: 'one two three STOP four five' } },
      ],
    });
    key = await createKey(gateway.url, 'anthropic-tenant');
    // The SDK sends the key as x-api-key, and anthropic-version on every request.
    client = new Anthropic({ baseURL: gateway.url, apiKey: key, maxRetries: 0, defaultHeaders: { 'anthropic-beta': 'tools-2024-05-16' } });
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
    await Promise.all(Object.values(protocols).map((s) => s.stop()));
  });

  it('answers a non-streaming request with one message, system prompt and stop sequences passed upstream', async () => {
    upstream.script = () => ({ tokens: ['Hello', ' from', ' upstream'], usage: { prompt_tokens: 12, completion_tokens: 3 } });
    const message = await client.messages.create({
      model: 'upstream',
      max_tokens: 64,
      system: 'You are terse.',
      stop_sequences: ['END'],
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.match(message.id, /^msg_/);
    assert.deepEqual(message.content, [{ type: 'text', text: 'Hello from upstream' }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.stop_sequence, null);
    assert.deepEqual(message.usage, { input_tokens: 12, output_tokens: 3 });
    const sent = upstream.requests.at(-1)!.body;
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'hi' },
    ]);
    assert.deepEqual(sent.stop, ['END']);
    assert.equal(sent.max_tokens, 64);
  });

  it('streams Anthropic\u2019s exact event sequence', async () => {
    upstream.script = () => ({ tokens: ['One', ' two', ' three'], usage: { prompt_tokens: 5, completion_tokens: 3 } });
    const { events, status } = await readSse(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'upstream', max_tokens: 32, stream: true, messages: [{ role: 'user', content: 'count' }] }),
    });
    assert.equal(status, 200);
    assert.deepEqual(
      events.map((e) => e.event),
      ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    for (const event of events) assert.equal((JSON.parse(event.data) as { type: string }).type, event.event, 'data.type equals the event name');
    const deltas = events.filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data) as { index: number; delta: { type: string; text: string } });
    assert.deepEqual(deltas.map((d) => [d.index, d.delta.type, d.delta.text]), [[0, 'text_delta', 'One'], [0, 'text_delta', ' two'], [0, 'text_delta', ' three']]);
    const messageDelta = JSON.parse(events.find((e) => e.event === 'message_delta')!.data) as { delta: { stop_reason: string }; usage: { output_tokens: number; input_tokens: number } };
    assert.equal(messageDelta.delta.stop_reason, 'end_turn');
    assert.deepEqual(messageDelta.usage, { output_tokens: 3, input_tokens: 5 });
  });

  it('streams through the SDK: text events and the final message', async () => {
    upstream.script = () => ({ tokens: ['Streamed', ' by', ' the', ' SDK'], usage: { prompt_tokens: 4, completion_tokens: 4 } });
    const stream = client.messages.stream({ model: 'upstream', max_tokens: 32, messages: [{ role: 'user', content: 'go' }] });
    let text = '';
    stream.on('text', (delta) => (text += delta));
    const final = await stream.finalMessage();
    assert.equal(text, 'Streamed by the SDK');
    assert.deepEqual(final.content, [{ type: 'text', text: 'Streamed by the SDK' }]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.input_tokens, 4);
    assert.equal(final.usage.output_tokens, 4);
  });

  it('maps tools, tool_choice, tool_use / tool_result history and images to the upstream', async () => {
    upstream.script = () => ({ tokens: ['Sunny'] });
    const image = Buffer.from('fake-png-bytes').toString('base64');
    await client.messages.create({
      model: 'upstream',
      max_tokens: 64,
      tools: [{ name: 'get_weather', description: 'Weather by city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }],
      tool_choice: { type: 'any' },
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Weather where this photo was taken?' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: image } }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '18°C, sunny' }, { type: 'text', text: 'Summarise.' }] },
      ],
    });
    const sent = upstream.requests.at(-1)!.body;
    assert.deepEqual(sent.tools, [
      { type: 'function', function: { name: 'get_weather', description: 'Weather by city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
    ]);
    assert.equal(sent.tool_choice, 'required');
    assert.deepEqual(sent.messages, [
      { role: 'user', content: [{ type: 'text', text: 'Weather where this photo was taken?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${image}` } }] },
      { role: 'assistant', content: 'Let me check.', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'toolu_1', content: '18°C, sunny' },
      { role: 'user', content: 'Summarise.' },
    ]);
  });

  it('returns a tool_use block, non-streaming and streaming (input_json_delta)', async () => {
    upstream.script = () => ({ toolCall: { id: 'call_7', name: 'get_weather', argumentChunks: ['{"city":', '"Paris"}'] } });
    const request = { model: 'upstream', max_tokens: 64, tools: [{ name: 'get_weather', input_schema: { type: 'object' as const } }], messages: [{ role: 'user' as const, content: 'weather?' }] };
    const message = await client.messages.create(request);
    assert.equal(message.stop_reason, 'tool_use');
    assert.deepEqual(message.content, [{ type: 'tool_use', id: 'call_7', name: 'get_weather', input: { city: 'Paris' } }]);

    const stream = client.messages.stream(request);
    const partials: string[] = [];
    stream.on('inputJson', (partial) => partials.push(partial));
    const final = await stream.finalMessage();
    assert.deepEqual(partials, ['{"city":', '"Paris"}']);
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.content, [{ type: 'tool_use', id: 'call_7', name: 'get_weather', input: { city: 'Paris' } }]);
  });

  for (const model of Object.keys(protocols)) {
    it(`an Anthropic client talks to a model behind ${model.replace('via-', '')}`, async () => {
      const final = await client.messages.stream({ model, max_tokens: 32, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
      assert.deepEqual(final.content, [{ type: 'text', text: tokens.join('') }]);
      assert.equal(final.stop_reason, 'end_turn');
      assert.equal(final.usage.output_tokens, tokens.length);
      const message = await client.messages.create({ model, max_tokens: 32, messages: [{ role: 'user', content: 'hi' }] });
      assert.deepEqual(message.content, [{ type: 'text', text: tokens.join('') }]);
    });
  }

  it('a reply ended by a stop sequence: Anthropic stop_reason stop_sequence with the string, OpenAI chat finish_reason stop, Responses completed', async () => {
    const anthropicUpstream = protocols['via-anthropic']!;
    anthropicUpstream.script = { tokens: ['Count:', ' 1', ' 2'], stopSequence: '###', usage: { prompt: 3, completion: 3 } };
    const openai = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
    try {
      // Reported by the upstream (an Anthropic model) and enforced by the model itself (the demo model honours `stop`).
      for (const [model, stop, text] of [['via-anthropic', '###', 'Count: 1 2'], ['demo', 'STOP', 'one two three ']] as const) {
        const request = { model, max_tokens: 32, stop_sequences: ['never-seen', stop], messages: [{ role: 'user' as const, content: 'count' }] };
        const message = await client.messages.create(request);
        assert.equal(message.stop_reason, 'stop_sequence', model);
        assert.equal(message.stop_sequence, stop, model);
        assert.deepEqual(message.content, [{ type: 'text', text }]);
        const streamed = await client.messages.stream(request).finalMessage();
        assert.equal(streamed.stop_reason, 'stop_sequence', `${model} streaming: message_delta carries it`);
        assert.equal(streamed.stop_sequence, stop);

        const completion = await openai.chat.completions.create({ model, stop: [stop], messages: [{ role: 'user', content: 'count' }] });
        assert.equal(completion.choices[0]?.finish_reason, 'stop', `${model}: OpenAI chat says stop`);
        assert.equal((completion.choices[0] as { stop_reason?: string }).stop_reason, stop, 'and names the sequence as vLLM does (stop_reason)');
        let finish: string | null | undefined;
        let stopReason: string | undefined;
        for await (const chunk of await openai.chat.completions.create({ model, stop: [stop], stream: true, messages: [{ role: 'user', content: 'count' }] })) {
          finish = chunk.choices[0]?.finish_reason ?? finish;
          stopReason = (chunk.choices[0] as { stop_reason?: string } | undefined)?.stop_reason ?? stopReason;
        }
        assert.equal(finish, 'stop');
        assert.equal(stopReason, stop);
      }
      // The Responses API sends no stop sequences, but an upstream may apply its own (a server-side default):
      // the generation ends with stopSequence set, and the response is simply completed.
      const response = await openai.responses.create({ model: 'via-anthropic', input: 'count' });
      assert.equal(response.status, 'completed');
      assert.equal(response.incomplete_details, null);
      assert.equal(response.output_text, 'Count: 1 2');
    } finally {
      anthropicUpstream.script = { tokens, usage: { prompt: 7, completion: tokens.length } };
    }
  });

  it('and back: an OpenAI client talks to a model behind the Anthropic protocol', async () => {
    const openai = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
    const completion = await openai.chat.completions.create({ model: 'via-anthropic', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(completion.choices[0]?.message.content, tokens.join(''));
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
  });

  it('aborting the SDK stream cancels the generation and closes the upstream', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 200 }, (_, i) => `t${i} `), tokenDelayMs: 20 });
    const before = upstream.requests.length;
    const stream = client.messages.stream({ model: 'upstream', max_tokens: 500, messages: [{ role: 'user', content: 'long' }] });
    await new Promise<void>((resolve) => stream.on('text', () => resolve()));
    stream.abort();
    await assert.rejects(stream.finalMessage(), (error: unknown) => error instanceof Anthropic.APIUserAbortError);
    const request = await waitFor('the upstream request', () => upstream.requests[before]);
    const closedAt = await Promise.race([request.closedEarly, new Promise<'open'>((resolve) => setTimeout(resolve, 10_000, 'open'))]);
    assert.notEqual(closedAt, 'open', 'the upstream connection was closed after the abort');
  });

  it('answers errors in Anthropic\u2019s shape, with its status codes', async () => {
    await assert.rejects(client.messages.create({ model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }), (error: unknown) => {
      assert.ok(error instanceof Anthropic.NotFoundError);
      assert.equal((error.error as { type: string; error: { type: string } }).error.type, 'not_found_error');
      assert.match(error.message, /no-such-model/);
      return true;
    });
    await assert.rejects(client.messages.create({ model: 'upstream', messages: [{ role: 'user', content: 'x' }] } as unknown as Anthropic.MessageCreateParamsNonStreaming), (error: unknown) => {
      assert.ok(error instanceof Anthropic.BadRequestError);
      assert.deepEqual(Object.keys(error.error as object).sort(), ['error', 'type']);
      assert.equal((error.error as { error: { type: string } }).error.type, 'invalid_request_error');
      assert.match(error.message, /max_tokens: Field required/);
      return true;
    });
    const stranger = new Anthropic({ baseURL: gateway.url, apiKey: 'tw_not_a_key', maxRetries: 0 });
    await assert.rejects(stranger.messages.create({ model: 'upstream', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }), Anthropic.AuthenticationError);
    const bearer = await fetch(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'upstream', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(bearer.status, 200, 'Authorization: Bearer works too');
  });

  it('raw HTTP with only x-api-key, anthropic-version and anthropic-beta is answered; a missing or invalid max_tokens gets Anthropic\u2019s error shape', async () => {
    upstream.script = () => ({ tokens: ['raw', ' reply'], usage: { prompt_tokens: 2, completion_tokens: 2 } });
    // Exactly what a hand-written client sends: no SDK headers (x-stainless-*, its user-agent), no Authorization.
    const headers = { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01', 'anthropic-beta': 'prompt-caching-2024-07-31,token-efficient-tools-2025-02-19' };
    const post = (body: unknown) => fetch(`${gateway.url}/v1/messages`, { method: 'POST', headers, body: JSON.stringify(body) });
    const ok = await post({ model: 'upstream', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.status, 200);
    const message = (await ok.json()) as Anthropic.Message;
    assert.equal(message.type, 'message');
    assert.deepEqual(message.content, [{ type: 'text', text: 'raw reply' }]);
    assert.equal(message.stop_reason, 'end_turn');

    for (const [label, maxTokens] of [['missing', undefined], ['zero', 0], ['negative', -5], ['a string', 'ten'], ['fractional', 1.5]] as const) {
      const refused = await post({ model: 'upstream', ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }), messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(refused.status, 400, `max_tokens ${label}: 400`);
      assert.match(refused.headers.get('content-type') ?? '', /application\/json/);
      const body = (await refused.json()) as { type: string; error: { type: string; message: string } };
      assert.deepEqual(Object.keys(body).sort(), ['error', 'type'], `max_tokens ${label}: Anthropic's error envelope`);
      assert.equal(body.type, 'error');
      assert.deepEqual(Object.keys(body.error).sort(), ['message', 'type']);
      assert.equal(body.error.type, 'invalid_request_error');
      assert.match(body.error.message, /max_tokens/, `max_tokens ${label}: the message names the field`);
    }
    const streamed = await post({ model: 'upstream', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(streamed.status, 400, 'a stream request without max_tokens is refused before any event');
    assert.equal(((await streamed.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
  });

  it('an upstream failure: its status non-streaming, and event: error in a stream', async () => {
    upstream.script = () => ({ status: 500 });
    await assert.rejects(client.messages.create({ model: 'upstream', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }), (error: unknown) => {
      assert.ok(error instanceof Anthropic.InternalServerError);
      assert.equal(error.status, 500);
      assert.equal((error.error as { error: { type: string } }).error.type, 'api_error');
      assert.match(error.message, /fake upstream failure 500/);
      return true;
    });
    upstream.script = () => ({ status: 429, retryAfter: '3' });
    const limited = client.messages.stream({ model: 'upstream', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(limited.finalMessage(), (error: unknown) => {
      assert.ok(error instanceof Anthropic.RateLimitError, 'an error before the first token keeps its HTTP status on a stream too');
      assert.equal((error.error as { error: { type: string } }).error.type, 'rate_limit_error');
      return true;
    });
    upstream.script = () => ({ tokens: ['partial', ' text', ' then', ' gone'], dropAfter: 2 });
    const stream = client.messages.stream({ model: 'upstream', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
    let streamed = '';
    stream.on('text', (text) => (streamed += text));
    await assert.rejects(stream.finalMessage(), Anthropic.APIError);
    assert.equal(streamed, 'partial text', 'the text before the failure arrived, then event: error');
  });

  it('count_tokens answers an estimate', async () => {
    const small = await client.messages.countTokens({ model: 'upstream', messages: [{ role: 'user', content: 'hi' }] });
    const big = await client.messages.countTokens({ model: 'upstream', system: 'x'.repeat(400), messages: [{ role: 'user', content: 'hi '.repeat(100) }] });
    assert.ok(small.input_tokens >= 1);
    assert.ok(big.input_tokens > small.input_tokens + 100, `${big.input_tokens} grows with the content`);
  });
});
