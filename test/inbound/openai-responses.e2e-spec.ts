import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';
import { waitFor } from '../support/wait';

type Event = { type: string; sequence_number: number };

/** `/v1/responses` driven by the openai SDK's responses.create, responses.stream and responses.retrieve. */
describe('OpenAI Responses API, driven by the openai SDK', () => {
  const upstream = new FakeOpenAIServer();
  let gateway: TestGateway;
  let client: OpenAI;
  let key: string;

  before(async () => {
    const baseUrl = await upstream.start();
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      upstream: { maxAttempts: 1, breakerFailureThreshold: 1000 },
      worker: { coalesce: 'off' },
      models: [{ name: 'upstream', provider: 'openai-compatible', upstreamModel: 'real-model', options: { baseUrl } }],
    });
    key = await createKey(gateway.url, 'responses-tenant');
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
  });

  it('responses.create: instructions and a string input, one response object with output_text and usage', async () => {
    upstream.script = () => ({ tokens: ['Bonjour', ' le', ' monde'], usage: { prompt_tokens: 9, completion_tokens: 3 } });
    const response = await client.responses.create({ model: 'upstream', instructions: 'Answer in French.', input: 'hello world', max_output_tokens: 50, metadata: { ticket: '42' } });
    assert.equal(response.object, 'response');
    assert.match(response.id, /^resp_/);
    assert.equal(response.status, 'completed');
    assert.equal(response.output_text, 'Bonjour le monde');
    assert.equal(response.output[0]?.type, 'message');
    assert.deepEqual(response.usage && [response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens], [9, 3, 12]);
    assert.equal(response.instructions, 'Answer in French.');
    assert.deepEqual(response.metadata, { ticket: '42' });
    const sent = upstream.requests.at(-1)!.body;
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'Answer in French.' },
      { role: 'user', content: 'hello world' },
    ]);
    assert.equal(sent.max_tokens, 50);
    const retrieved = await client.responses.retrieve(response.id);
    assert.equal(retrieved.output_text, 'Bonjour le monde');
    assert.equal(retrieved.status, 'completed');
  });

  it('responses.stream: the Responses event sequence, numbered from 0 without gaps', async () => {
    upstream.script = () => ({ tokens: ['Streamed', ' reply'], usage: { prompt_tokens: 2, completion_tokens: 2 } });
    const stream = client.responses.stream({ model: 'upstream', input: [{ role: 'user', content: [{ type: 'input_text', text: 'stream it' }] }] });
    const events: Event[] = [];
    let text = '';
    stream.on('event', (event) => events.push(event));
    stream.on('response.output_text.delta', (event) => (text += event.delta));
    const final = await stream.finalResponse();
    assert.equal(text, 'Streamed reply');
    assert.equal(final.output_text, 'Streamed reply');
    assert.equal(final.status, 'completed');
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ],
    );
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  });

  it('function tools: a function_call item, then function_call_output continues the conversation by previous_response_id', async () => {
    upstream.script = () => ({ toolCall: { id: 'call_9', name: 'get_weather', argumentChunks: ['{"city":', '"Oslo"}'] } });
    const tools: OpenAI.Responses.FunctionTool[] = [{ type: 'function', name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }];
    const first = await client.responses.create({ model: 'upstream', input: 'weather in Oslo?', tools, tool_choice: 'required' });
    assert.deepEqual(
      first.output.map((item) => item.type === 'function_call' && [item.call_id, item.name, item.arguments]),
      [['call_9', 'get_weather', '{"city":"Oslo"}']],
    );
    let sent = upstream.requests.at(-1)!.body;
    assert.deepEqual(sent.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false } }]);
    assert.equal(sent.tool_choice, 'required');

    upstream.script = () => ({ tokens: ['It is 4°C'] });
    const second = await client.responses.create({
      model: 'upstream',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: 'call_9', output: '{"celsius":4}' }],
    });
    assert.equal(second.output_text, 'It is 4°C');
    assert.equal(second.previous_response_id, first.id);
    sent = upstream.requests.at(-1)!.body;
    assert.deepEqual(sent.messages, [
      { role: 'user', content: 'weather in Oslo?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_9', content: '{"celsius":4}' },
    ]);

    upstream.script = () => ({ tokens: ['Done'] });
    await client.responses.create({ model: 'upstream', previous_response_id: second.id, input: 'thanks', instructions: 'be brief' });
    sent = upstream.requests.at(-1)!.body;
    assert.deepEqual((sent.messages as unknown[]).slice(0, 1), [{ role: 'system', content: 'be brief' }], 'instructions are not carried over, only sent anew');
    assert.deepEqual((sent.messages as unknown[]).slice(-2), [
      { role: 'assistant', content: 'It is 4°C' },
      { role: 'user', content: 'thanks' },
    ]);
  });

  it('a stream of function_call events through the SDK', async () => {
    upstream.script = () => ({ toolCall: { id: 'call_s', name: 'lookup', argumentChunks: ['{"q":', '"x"}'] } });
    const stream = client.responses.stream({ model: 'upstream', input: 'look it up', tools: [{ type: 'function', name: 'lookup', parameters: null, strict: false }] });
    const deltas: string[] = [];
    stream.on('response.function_call_arguments.delta', (event) => deltas.push(event.delta));
    const final = await stream.finalResponse();
    assert.deepEqual(deltas, ['{"q":', '"x"}']);
    const call = final.output[0];
    assert.ok(call?.type === 'function_call');
    assert.equal(call.arguments, '{"q":"x"}');
    assert.equal(call.status, 'completed');
  });

  it('previous_response_id of another tenant, or of an unstored response, is a 404', async () => {
    upstream.script = () => ({ tokens: ['mine'] });
    const mine = await client.responses.create({ model: 'upstream', input: 'private' });
    const other = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: await createKey(gateway.url, 'other-tenant'), maxRetries: 0 });
    await assert.rejects(other.responses.create({ model: 'upstream', input: 'x', previous_response_id: mine.id }), OpenAI.NotFoundError);
    await assert.rejects(other.responses.retrieve(mine.id), OpenAI.NotFoundError);
    const unstored = await client.responses.create({ model: 'upstream', input: 'forget me', store: false });
    assert.equal(unstored.output_text, 'mine');
    await assert.rejects(client.responses.retrieve(unstored.id), OpenAI.NotFoundError);
    await assert.rejects(client.responses.create({ model: 'upstream', input: 'x', background: true, store: false }), OpenAI.BadRequestError);
  });

  it('background: returns at once, polls to completion, and resumes the stream after starting_after', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 30 }, (_, i) => `w${i} `), tokenDelayMs: 40, usage: { prompt_tokens: 1, completion_tokens: 30 } });
    const queued = await client.responses.create({ model: 'upstream', input: 'take your time', background: true });
    assert.equal(queued.status, 'queued', 'answered before the generation finished');
    assert.deepEqual(queued.output, []);
    assert.equal(queued.background, true);
    const done = await waitFor('the background response to complete', async () => {
      const polled = await client.responses.retrieve(queued.id);
      return polled.status === 'completed' ? polled : undefined;
    });
    const full = Array.from({ length: 30 }, (_, i) => `w${i} `).join('');
    assert.equal(done.output_text, full);

    // The whole stream, then a resume after event 5: the same events from 6 on.
    const all = await readSse(`${gateway.url}/v1/responses/${queued.id}?stream=true`, { headers: { authorization: `Bearer ${key}` } });
    const allEvents = all.events.map((e) => JSON.parse(e.data) as Event & { delta?: string });
    assert.deepEqual(allEvents.map((e) => e.sequence_number), allEvents.map((_, i) => i));
    assert.equal(allEvents.at(-1)?.type, 'response.completed');
    const resumed = await readSse(`${gateway.url}/v1/responses/${queued.id}?stream=true&starting_after=5`, { headers: { authorization: `Bearer ${key}` } });
    assert.deepEqual(resumed.events.map((e) => e.data), all.events.slice(6).map((e) => e.data));

    // The SDK's resume: responses.stream({response_id, starting_after}) emits only the later events.
    const sdkResumed: Event[] = [];
    const stream = client.responses.stream({ response_id: queued.id, starting_after: 5 });
    stream.on('event', (event) => sdkResumed.push(event));
    const final = await stream.finalResponse();
    assert.equal(final.output_text, full);
    assert.deepEqual(sdkResumed.map((e) => e.sequence_number), allEvents.slice(6).map((e) => e.sequence_number));

    const past = await fetch(`${gateway.url}/v1/responses/${queued.id}?stream=true&starting_after=${allEvents.length + 5}`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(past.status, 400);
  });

  it('background: a stream reader that disconnects does not cancel; the response completes', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 10 }, (_, i) => `b${i} `), tokenDelayMs: 30 });
    const controller = new AbortController();
    const stream = await client.responses.create({ model: 'upstream', input: 'keep going', background: true, stream: true }, { signal: controller.signal });
    let id = '';
    try {
      for await (const event of stream) {
        if (event.type === 'response.created') id = event.response.id;
        if (event.type === 'response.output_text.delta') break; // leaves the stream (aborts the request)
      }
    } catch (error) {
      if (!(error instanceof OpenAI.APIUserAbortError)) throw error;
    }
    assert.ok(id);
    const done = await waitFor('the abandoned background response to complete', async () => {
      const polled = await client.responses.retrieve(id);
      return polled.status === 'completed' ? polled : undefined;
    });
    assert.equal(done.output_text, Array.from({ length: 10 }, (_, i) => `b${i} `).join(''));
  });

  it('background: POST /v1/responses/{id}/cancel cancels and closes the upstream', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 300 }, (_, i) => `c${i} `), tokenDelayMs: 20 });
    const before = upstream.requests.length;
    const queued = await client.responses.create({ model: 'upstream', input: 'long', background: true });
    const request = await waitFor('the upstream request', () => upstream.requests[before]);
    const cancelled = await client.responses.cancel(queued.id);
    assert.equal(cancelled.status, 'cancelled');
    const closedAt = await Promise.race([request.closedEarly, new Promise<'open'>((resolve) => setTimeout(resolve, 10_000, 'open'))]);
    assert.notEqual(closedAt, 'open', 'the upstream connection was closed');
    assert.equal((await client.responses.retrieve(queued.id)).status, 'cancelled');
  });

  it('a foreground stream aborted by its client cancels the generation', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 300 }, (_, i) => `f${i} `), tokenDelayMs: 20 });
    const before = upstream.requests.length;
    const stream = client.responses.stream({ model: 'upstream', input: 'long' });
    await new Promise<void>((resolve) => stream.on('response.output_text.delta', () => resolve()));
    stream.abort();
    await assert.rejects(stream.finalResponse(), OpenAI.APIUserAbortError);
    const request = await waitFor('the upstream request', () => upstream.requests[before]);
    const closedAt = await Promise.race([request.closedEarly, new Promise<'open'>((resolve) => setTimeout(resolve, 10_000, 'open'))]);
    assert.notEqual(closedAt, 'open', 'the upstream connection was closed');
  });

  it('rejects what it does not support with a 400 that says what is allowed', async () => {
    await assert.rejects(
      client.responses.create({ model: 'upstream', input: 'x', tools: [{ type: 'web_search' }] as unknown as OpenAI.Responses.Tool[] }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && /function tools/.test(error.message),
    );
    await assert.rejects(client.responses.create({ model: 'nope', input: 'x' }), OpenAI.NotFoundError);
  });
});
