import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { io } from 'socket.io-client';
import { GENERATIONS_NAMESPACE, type StreamEvent } from '@tokenwire/contracts';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';
import { AnthropicProtocolServer, OllamaProtocolServer, OpenAIProtocolServer, ResponsesHttpProtocolServer, TgiProtocolServer } from '../support/protocols/http-protocol-servers';
import { ResponsesWsProtocolServer } from '../support/protocols/responses-ws-protocol-server';
import { TritonProtocolServer } from '../support/protocols/triton-protocol-server';
import { WebSocketProtocolServer } from '../support/protocols/websocket-protocol-server';
import { GrpcProtocolServer } from '../support/protocols/grpc-protocol-server';
import type { ProtocolServer } from '../support/protocols/protocol-server';
import { waitFor } from '../support/wait';

/** Every upstream protocol, end to end: api → queue → worker → provider → upstream, and back to SSE and Socket.IO clients. */
describe('each upstream protocol through the whole gateway', () => {
  const servers: Record<string, ProtocolServer> = {
    openai: new OpenAIProtocolServer(),
    ollama: new OllamaProtocolServer(),
    anthropic: new AnthropicProtocolServer(),
    websocket: new WebSocketProtocolServer(),
    grpc: new GrpcProtocolServer('bidi'),
    triton: new TritonProtocolServer(),
    'openai-responses-ws': new ResponsesWsProtocolServer(),
    tgi: new TgiProtocolServer(),
    'openai-responses-http': new ResponsesHttpProtocolServer(),
  };
  let gateway: TestGateway;
  const tokens = ['Tokens', ' from', ' a', ' real', ' protocol'];

  before(async () => {
    await Promise.all(Object.values(servers).map((s) => s.start()));
    for (const server of Object.values(servers)) server.script = { tokens, usage: { prompt: 3, completion: tokens.length } };
    gateway = await startGateway({
      models: [
        ...Object.entries(servers).map(([name, server]) => ({ name, provider: server.providerType, options: server.providerOptions() })),
        { name: 'echo', provider: 'plugin', options: { module: path.resolve(__dirname, '..', '..', '..', 'examples', 'echo-plugin') } },
      ],
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  });

  const viaSse = async (model: string, content = 'hi') => {
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
    });
    const { id } = (await created.json()) as { id: string };
    return (await readSse(`${gateway.url}/v1/generations/${id}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);
  };

  for (const name of ['openai', 'ollama', 'anthropic', 'websocket', 'grpc', 'triton', 'openai-responses-ws', 'tgi', 'openai-responses-http']) {
    it(`${name}: the job SSE stream carries the full text, usage and done`, async () => {
      const events = await viaSse(name);
      assertCompleteStream(events);
      assert.equal(visibleText(events), tokens.join(''));
      const usage = events.find((e) => e.type === 'usage');
      // Upstream counts where the protocol reports them; otherwise the gateway counts.
      const promptReported = (servers[name]!.reportsUsage ?? 'both') === 'both';
      assert.ok(usage?.type === 'usage' && usage.completionTokens === tokens.length && (!promptReported || usage.promptTokens === 3), JSON.stringify(usage));
      assert.equal(events.at(-1)?.type, 'done');
    });
  }

  // Which protocols say that a stop sequence ended the reply, and which one: the others report a plain stop.
  const saysStopSequence = new Set(['anthropic', 'openai', 'tgi']);
  // The Responses API has no stop sequences, and this websocket template maps none: those models refuse `stop`.
  const takesStop = Object.keys(servers).filter((name) => !['websocket', 'openai-responses-ws', 'openai-responses-http'].includes(name));
  for (const name of takesStop) {
    it(`${name}: a reply ended by a stop sequence ${saysStopSequence.has(name) ? 'says which one in done.stopSequence' : 'is a plain stop (the protocol does not say)'}`, async () => {
      const server = servers[name]!;
      server.script = { tokens: ['Count:', ' 1', ' 2'], stopSequence: '###' };
      try {
        const created = await fetch(`${gateway.url}/v1/generations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: name, messages: [{ role: 'user', content: 'count' }], stop: ['END', '###'] }),
        });
        assert.equal(created.status, 202, await created.clone().text());
        const { id } = (await created.json()) as { id: string };
        const events = (await readSse(`${gateway.url}/v1/generations/${id}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);
        const done = events.at(-1);
        assert.equal(done?.type, 'done', JSON.stringify(done));
        assert.equal(done.finishReason, 'stop');
        assert.equal(done.stopSequence, saysStopSequence.has(name) ? '###' : undefined);
        // As OpenAI, Anthropic and vLLM answer: the stop sequence is not part of the reply (TGI leaves it in its text).
        assert.equal(visibleText(events), 'Count: 1 2');
        const generation = (await (await fetch(`${gateway.url}/v1/generations/${id}`)).json()) as { finishReason: string; stopSequence?: string };
        assert.equal(generation.finishReason, 'stop');
        assert.equal(generation.stopSequence, done.stopSequence, 'the generation view carries it too');
      } finally {
        server.script = { tokens, usage: { prompt: 3, completion: tokens.length } };
      }
    });
  }

  it('tgi: a stop sequence split over tokens is held back and left out; text that only looked like its start is not', async () => {
    const server = servers.tgi!;
    const run = async (script: typeof server.script, stop: string[]) => {
      server.script = script;
      const created = await fetch(`${gateway.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tgi', messages: [{ role: 'user', content: 'count' }], stop }),
      });
      assert.equal(created.status, 202, await created.clone().text());
      const { id } = (await created.json()) as { id: string };
      return (await readSse(`${gateway.url}/v1/generations/${id}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);
    };
    try {
      // '#' comes in one token, '##' completes '###' in the last: none of the three reaches the client.
      const stopped = await run({ tokens: ['Count:', ' 1', ' 2', '#'], stopSequence: '##' }, ['END', '###']);
      assert.equal(visibleText(stopped), 'Count: 1 2');
      const done = stopped.at(-1);
      assert.equal(done?.type === 'done' && done.stopSequence, '###');
      // '#' and 'E' could start a stop sequence; the next token shows they do not, and they are delivered in order.
      const open = await run({ tokens: ['a #', '# b', ' EN', 'D?'], usage: { prompt: 3, completion: 4 } }, ['END!', '###']);
      assert.equal(visibleText(open), 'a ## b END?');
      assert.equal(open.at(-1)?.type, 'done');
    } finally {
      server.script = { tokens, usage: { prompt: 3, completion: tokens.length } };
    }
  });

  it('plugin: a model served by the example plugin streams over Socket.IO', async () => {
    const socket = io(`${gateway.url}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true });
    const received: StreamEvent[] = [];
    for (const type of ['chunk', 'usage', 'done', 'error'] as const) socket.on(type, (e: StreamEvent) => received.push(e));
    try {
      const ack = await socket.emitWithAck('generate', { model: 'echo', messages: [{ role: 'user', content: 'plugins work' }] });
      assert.ok(ack.ok);
      await waitFor('done', () => received.some((e) => e.type === 'done' || e.type === 'error'));
      assert.equal(visibleText(received), 'plugins work');
    } finally {
      socket.close();
    }
  });

  it('the websocket request template carried the messages and max_tokens', async () => {
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'websocket', max_tokens: 77, messages: [{ role: 'user', content: 'template check' }] }),
    });
    const { id } = (await created.json()) as { id: string };
    await readSse(`${gateway.url}/v1/generations/${id}/events`);
    const request = (servers.websocket as WebSocketProtocolServer).lastRequest as { model: string; max_tokens: number; messages: Array<{ content: string }> };
    assert.equal(request.model, 'websocket');
    assert.equal(request.max_tokens, 77);
    assert.equal(request.messages[0]?.content, 'template check');
  });
});
