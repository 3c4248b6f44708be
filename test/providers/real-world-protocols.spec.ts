import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OpenAIResponsesWsProvider, TritonProvider, decodeBytesTensor, encodeBytesTensor, type ProviderChunk } from '@tokenwire/providers';
import { ResponsesWsProtocolServer } from '../support/protocols/responses-ws-protocol-server';
import { TritonProtocolServer } from '../support/protocols/triton-protocol-server';

const request = (content: string, maxTokens?: number) => ({ model: 'ensemble', messages: [{ role: 'user' as const, content }], params: { maxTokens } });
async function run(provider: { stream: TritonProvider['stream'] }, content: string, signal = new AbortController().signal, maxTokens?: number) {
  const chunks: ProviderChunk[] = [];
  for await (const chunk of provider.stream(request(content, maxTokens), { signal })) chunks.push(chunk);
  return chunks;
}

describe('triton provider', () => {
  const server = new TritonProtocolServer();
  before(() => server.start());
  after(() => server.stop());

  it("sends TensorRT-LLM's ensemble inputs: text_input (BYTES), max_tokens (INT32), stream (BOOL)", async () => {
    await run(new TritonProvider({ ...server.providerOptions(), prompt: 'last-user' }), 'what is Triton?', undefined, 64);
    assert.deepEqual(Object.keys(server.lastInputs).sort(), ['max_tokens', 'stream', 'text_input']);
    assert.equal(Buffer.from(server.lastInputs.text_input as Uint8Array).toString(), 'what is Triton?');
    assert.equal(server.lastInputs.max_tokens, 64);
    assert.equal(server.lastInputs.stream, true);
  });

  it('BYTES tensors round-trip through the length-prefixed serialization', () => {
    assert.deepEqual(decodeBytesTensor(encodeBytesTensor(['a', '', 'ünïcode ✓'])), ['a', '', 'ünïcode ✓']);
    assert.throws(() => decodeBytesTensor(Buffer.from([5, 0, 0, 0, 65])), /truncated/);
  });
});

describe('openai-responses-ws connection pool', () => {
  const server = new ResponsesWsProtocolServer();
  before(() => server.start());
  after(() => server.stop());

  it('consecutive jobs reuse one connection, and each sends response.create without `stream`', async () => {
    const provider = new OpenAIResponsesWsProvider(server.providerOptions());
    server.script = { tokens: ['one'] };
    const before = server.connections;
    for (let i = 0; i < 3; i++) assert.equal((await run(provider, `job ${i}`)).find((c) => c.type === 'text-delta')?.type, 'text-delta');
    assert.equal(server.connections - before, 1);
    assert.equal(server.lastRequest?.type, 'response.create');
    assert.equal('stream' in (server.lastRequest ?? {}), false);
    assert.deepEqual(server.lastRequest?.input, [{ role: 'user', content: 'job 2' }]);
  });

  it('a connection past its maximum age is replaced between jobs, never during one', async () => {
    const provider = new OpenAIResponsesWsProvider({ ...server.providerOptions(), maxConnectionAgeMs: 150 });
    server.script = { tokens: ['a', 'b', 'c', 'd'], tokenDelayMs: 60 }; // each job outlives the maximum age
    const before = server.connections;
    const first = await run(provider, 'first');
    assert.equal(first.at(-1)?.type, 'finish', 'a job that outlived the age limit still completed on its connection');
    await run(provider, 'second');
    assert.equal(server.connections - before, 2, 'the second job got a fresh connection');
  });

  it('a connection aborted mid-job is closed, not returned to the pool', async () => {
    const provider = new OpenAIResponsesWsProvider(server.providerOptions());
    server.script = { tokens: Array.from({ length: 50 }, (_, i) => `${i} `), tokenDelayMs: 10 };
    const before = server.connections;
    const controller = new AbortController();
    await assert.rejects(async () => {
      for await (const chunk of provider.stream(request('abort me'), { signal: controller.signal })) if (chunk.type === 'text-delta') controller.abort(new Error('stop'));
    }, /stop/);
    server.script = { tokens: ['fresh'] };
    await run(provider, 'next');
    assert.equal(server.connections - before, 2);
  });
});
