import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  SAMPLING_PARAM_FIELDS,
  UpstreamError,
  UpstreamProtocolError,
  UpstreamStalledError,
  builtInProviderFactories,
  requestRefusal,
  withStallTimeout,
  type LanguageModelProvider,
  type ProviderChunk,
  type ProviderRequest,
  type SamplingParam,
} from '@tokenwire/providers';
import type { GenerationParams } from '@tokenwire/contracts';
import type { ProtocolServer } from '../support/protocols/protocol-server';

const REQUEST: ProviderRequest = { model: 'test-model', messages: [{ role: 'user', content: 'hi' }], params: { maxTokens: 50 } };

const TOOLS: NonNullable<GenerationParams['tools']> = [
  { type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
];
/** One value per sampling parameter, each exact in float32 (gRPC and Triton carry floats). */
const EVERY_PARAM: Required<Pick<GenerationParams, SamplingParam>> = { temperature: 0.5, topP: 0.75, maxTokens: 42, stop: ['END'], seed: 7, presencePenalty: 0.25, frequencyPenalty: 0.5 };
/** A 1×1 PNG as a data URL. */
const IMAGE_BASE64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==';

async function collect(
  provider: LanguageModelProvider,
  signal = new AbortController().signal,
  onChunk?: (chunk: ProviderChunk) => void,
  request: ProviderRequest = REQUEST,
): Promise<ProviderChunk[]> {
  const chunks: ProviderChunk[] = [];
  for await (const chunk of provider.stream(request, { signal })) {
    chunks.push(chunk);
    onChunk?.(chunk);
  }
  return chunks;
}
const text = (chunks: ProviderChunk[]) => chunks.map((c) => (c.type === 'text-delta' ? c.text : '')).join('');

/**
 * The shared conformance suite: every provider, against a real server of its
 * protocol, must behave the same way on these points. A provider added later
 * gets all of them by adding one line to providers.spec.ts and a ProtocolServer.
 */
export function providerConformance(name: string, makeServer: () => ProtocolServer): void {
  describe(`${name} provider conformance`, () => {
    const server = makeServer();
    let provider: LanguageModelProvider;

    before(async () => {
      await server.start();
      provider = builtInProviderFactories[server.providerType]!(server.providerOptions());
    });
    after(() => server.stop());

    it('streams the full text in order, then a finish', async () => {
      server.script = { tokens: ['The', ' quick', ' brown', ' fox', ' ✓'] };
      const chunks = await collect(provider);
      assert.equal(text(chunks), 'The quick brown fox ✓');
      assert.deepEqual(chunks.filter((c) => c.type === 'text-delta').map((c) => (c as { text: string }).text), ['The', ' quick', ' brown', ' fox', ' ✓']);
      assert.equal(chunks.at(-1)?.type, 'finish');
    });

    it('reports usage when the upstream gives it', async () => {
      server.script = { tokens: ['a', 'b'], usage: { prompt: 7, completion: 2 } };
      const usage = (await collect(provider)).find((c) => c.type === 'usage');
      const expected = { both: { promptTokens: 7, completionTokens: 2 }, completion: { completionTokens: 2 }, none: undefined }[server.reportsUsage ?? 'both'];
      assert.deepEqual(usage, expected && { type: 'usage', usage: expected });
    });

    it('abort closes the upstream connection within 100 ms, as the server observes', async () => {
      // The fastest of three tries must be under 100 ms: scheduler noise on a loaded 2-core CI machine
      // can delay one observation, but a provider that does not pass the abort on closes after ~2 s or never.
      const delays: number[] = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        server.script = { tokens: Array.from({ length: 200 }, (_, i) => `${i} `), tokenDelayMs: 10 };
        const controller = new AbortController();
        let abortedAt = 0;
        const reading = collect(provider, controller.signal, (chunk) => {
          if (chunk.type === 'text-delta' && !abortedAt) {
            abortedAt = performance.now();
            controller.abort(new Error('client stopped'));
          }
        });
        await assert.rejects(reading, /client stopped/);
        const closedAt = await Promise.race([server.lastEarlyClose(), new Promise<number>((r) => setTimeout(r, 1000, Number.NaN))]);
        assert.ok(Number.isFinite(closedAt), 'the server saw the connection close');
        delays.push(closedAt - abortedAt);
      }
      assert.ok(Math.min(...delays) < 100, `closed ${delays.map((d) => d.toFixed(1)).join(', ')} ms after the abort`);
    });

    it('an upstream error mid-stream is a typed error after the tokens before it', async () => {
      server.script = { tokens: ['one', ' two', ' three'], errorAfter: 2 };
      const chunks: ProviderChunk[] = [];
      await assert.rejects(collect(provider, undefined, (c) => chunks.push(c)), (error: unknown) => {
        assert.ok(error instanceof UpstreamError, `got ${String(error)}`);
        assert.equal(error.code, 'upstream_error');
        return true;
      });
      assert.equal(text(chunks), 'one two');
    });

    it('a malformed frame is an UpstreamProtocolError, not a crash', async () => {
      server.script = { tokens: ['fine', ' then'], malformedAfter: 1 };
      await assert.rejects(collect(provider), (error: unknown) => {
        assert.ok(error instanceof UpstreamProtocolError, `got ${String(error)}`);
        return true;
      });
    });

    it('tools round-trip (ids, names, arguments as a JSON string, finish tool_calls), or the request is refused naming the model', async () => {
      if (!provider.capabilities.tools) {
        const refusal = requestRefusal('m', provider.id, provider.capabilities, { messages: REQUEST.messages, params: { tools: TOOLS } });
        assert.equal(refusal?.param, 'tools');
        assert.match(refusal!.message, /model 'm' \(provider [\w-]+\) cannot call tools/);
        return;
      }
      server.script = { tokens: [], toolCall: { id: 'call_abc123', name: 'get_weather', arguments: { city: 'Paris', days: 2 } } };
      const chunks = await collect(provider, undefined, undefined, { ...REQUEST, params: { tools: TOOLS, toolChoice: 'auto' } });
      assert.deepEqual(server.received().tools, ['get_weather'], 'the upstream was offered the tool');
      const deltas = chunks.filter((c) => c.type === 'tool-call-delta');
      assert.ok(deltas.length > 0, 'tool-call deltas arrived');
      assert.ok(deltas.every((d) => d.index === 0));
      const first = deltas[0]!;
      assert.equal(first.name, 'get_weather');
      assert.ok(typeof first.id === 'string' && first.id.length > 0, 'the call has an id');
      if (server.sendsToolCallIds !== false) assert.equal(first.id, 'call_abc123');
      assert.deepEqual(JSON.parse(deltas.map((d) => d.arguments ?? '').join('')), { city: 'Paris', days: 2 });
      assert.deepEqual(chunks.at(-1), { ...chunks.at(-1), type: 'finish', reason: 'tool_calls' });
    });

    it('parameter mapping: each field the provider takes reaches the upstream in its form; each other one is refused', async () => {
      const taken = (Object.keys(EVERY_PARAM) as SamplingParam[]).filter((name) => !provider.capabilities.params || provider.capabilities.params[name]);
      for (const name of Object.keys(EVERY_PARAM) as SamplingParam[]) {
        if (taken.includes(name)) continue;
        const refusal = requestRefusal('m', provider.id, provider.capabilities, { messages: REQUEST.messages, params: { [name]: EVERY_PARAM[name] } });
        assert.equal(refusal?.param, SAMPLING_PARAM_FIELDS[name], `${name} is refused`);
      }
      const params = Object.fromEntries(taken.map((name) => [name, EVERY_PARAM[name]])) as GenerationParams;
      assert.equal(requestRefusal('m', provider.id, provider.capabilities, { messages: REQUEST.messages, params }), undefined);
      server.script = { tokens: ['ok'] };
      await collect(provider, undefined, undefined, { ...REQUEST, params });
      const received = server.received().params;
      for (const name of taken) assert.deepEqual(received[name], EVERY_PARAM[name], `${name} reached the upstream`);
    });

    it('event types the provider does not know are skipped; the text stays whole', async () => {
      server.script = { tokens: ['before', ' the', ' unknown', ' event'], unknownEventAfter: 2, usage: { prompt: 3, completion: 4 } };
      const chunks = await collect(provider);
      assert.equal(text(chunks), 'before the unknown event');
      assert.ok(chunks.some((c) => c.type === 'finish'), 'the stream finished');
    });

    const http = server.transport === 'http';
    for (const encoding of ['gzip', 'deflate', 'br'] as const) {
      it(`a ${encoding}-compressed body is decoded, though the gateway asked for identity`, { skip: !http && `${server.transport}: the transport compresses on its own terms` }, async () => {
        server.script = { tokens: ['squeezed', ' tokens', ' ✓'], compress: encoding };
        const chunks = await collect(provider);
        assert.equal(text(chunks), 'squeezed tokens ✓');
        assert.equal(server.lastHeaders?.['accept-encoding'], 'identity');
      });
    }

    it('one leading UTF-8 BOM is stripped; the first event is kept', { skip: !http && `${server.transport}: no byte stream to prefix` }, async () => {
      server.script = { tokens: ['first', ' second'], bom: true, usage: { prompt: 7, completion: 2 } };
      const chunks = await collect(provider);
      assert.equal(text(chunks), 'first second');
      const expected = { both: { promptTokens: 7, completionTokens: 2 }, completion: { completionTokens: 2 }, none: undefined }[server.reportsUsage ?? 'both'];
      assert.deepEqual(chunks.find((c) => c.type === 'usage'), expected && { type: 'usage', usage: expected });
    });

    it("an upstream refusal before the first token keeps the upstream's status, code and message, and is not retryable", async () => {
      const refuse = { status: 400, code: 'context_length_exceeded', message: 'the prompt is longer than this model takes', param: 'messages' };
      server.script = { tokens: ['never'], refuse };
      await assert.rejects(collect(provider), (error: unknown) => {
        assert.ok(error instanceof UpstreamError, `got ${String(error)}`);
        const g = error.toGatewayError();
        assert.equal(g.status, 400);
        assert.equal(g.retryable, false);
        assert.equal(g.upstreamCode, server.upstreamCodeFor(refuse));
        assert.match(g.message, /the prompt is longer than this model takes/);
        return true;
      });
    });

    it('a connection broken after the first tokens (for gRPC: UNAVAILABLE) is upstream_closed, not retryable', async () => {
      server.script = { tokens: ['one', ' two', ' three'], dropAfter: 2 };
      const chunks: ProviderChunk[] = [];
      await assert.rejects(collect(provider, undefined, (c) => chunks.push(c)), (error: unknown) => {
        assert.ok(error instanceof UpstreamError, `got ${String(error)}`);
        assert.equal(error.code, 'upstream_closed');
        assert.equal(error.retryable, false, 'a retry cannot continue a reply the client already has part of');
        return true;
      });
      assert.equal(text(chunks), 'one two');
    });

    it('content parts: text parts arrive as parts or joined by a newline, never run together; an image as the protocol carries it, or refused', async () => {
      const parts: ProviderRequest['messages'] = [{ role: 'user', content: [{ type: 'text', text: 'part one' }, { type: 'text', text: 'part two' }] }];
      server.script = { tokens: ['ok'] };
      await collect(provider, undefined, undefined, { ...REQUEST, messages: parts });
      assert.ok(server.received().userTexts.join('\n').includes('part one\npart two'), JSON.stringify(server.received().userTexts));
      const withImage: ProviderRequest['messages'] = [{ role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${IMAGE_BASE64}` } }] }];
      const refusal = requestRefusal('m', provider.id, provider.capabilities, { messages: withImage, params: {} });
      if ((provider.capabilities.images ?? 'none') === 'none') {
        assert.equal(refusal?.param, 'messages[0].content[1]');
        assert.match(refusal!.message, /model 'm'.*image_url/);
        return;
      }
      assert.equal(refusal, undefined);
      await collect(provider, undefined, undefined, { ...REQUEST, messages: withImage });
      assert.deepEqual(server.received().userImages, [IMAGE_BASE64]);
    });

    it('an upstream that never answers ends with UpstreamStalledError (withStallTimeout)', async () => {
      server.script = { tokens: ['never'], silent: true };
      const stalling = withStallTimeout(provider, 200);
      await assert.rejects(
        (async () => {
          for await (const _chunk of stalling.stream(REQUEST, { signal: new AbortController().signal })) {
            // nothing arrives
          }
        })(),
        (error: unknown) => error instanceof UpstreamStalledError,
      );
    });

    it('a consumer that stops after the first token closes the upstream connection and ends the stream (withStallTimeout)', async () => {
      server.script = { tokens: Array.from({ length: 200 }, (_, i) => `${i} `), tokenDelayMs: 10 };
      const watched = withStallTimeout(provider, 100);
      const iterator = watched.stream(REQUEST, { signal: new AbortController().signal })[Symbol.asyncIterator]();
      const first = await iterator.next();
      assert.equal(first.done, false);
      assert.deepEqual(await iterator.return?.(), { done: true, value: undefined });
      assert.ok(await Promise.race([server.lastEarlyClose(), new Promise<false>((r) => setTimeout(r, 2_000, false))]), 'the upstream connection was closed');
      assert.deepEqual(await iterator.next(), { done: true, value: undefined });
    });

    const noKeepAlive = server.keepAliveForm ? false : 'this protocol server sends no keep-alive';
    it(`keep-alives (${server.keepAliveForm ?? 'none'}) for longer than the stall timeout are life: the text follows (withStallTimeout)`, { skip: noKeepAlive }, async () => {
      server.script = { tokens: ['alive', ' after', ' all'], keepAlive: { everyMs: 50, forMs: 900 } };
      const chunks = await collect(withStallTimeout(provider, 300));
      assert.equal(text(chunks), 'alive after all');
    });

    it('keep-alives and no token: firstTokenMs ends the call, and the message says keep-alives came', { skip: noKeepAlive }, async () => {
      server.script = { tokens: ['too late'], keepAlive: { everyMs: 50, forMs: 30_000 } };
      const waiting = withStallTimeout(provider, { idleMs: 300, firstTokenMs: 600 });
      await assert.rejects(collect(waiting), (error: unknown) => {
        assert.ok(error instanceof UpstreamStalledError, `got ${String(error)}`);
        assert.match(error.message, /keep-alives only, no token for 600 ms/);
        return true;
      });
      assert.ok(await Promise.race([server.lastEarlyClose(), new Promise<false>((r) => setTimeout(r, 2_000, false))]), 'the upstream connection was closed');
    });
  });
}
