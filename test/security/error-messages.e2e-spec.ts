import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { createApi, type RunningApi } from '@tokenwire/api';
import { testConfig } from '../support/gateway';
import { deletePrefix } from '../support/redis';
import { connectSocket, type ClientSocket } from '../support/tenants';

interface OpenAIError {
  error: { message: string; type: string; param: string | null; code: string };
}

const MAX_OUTPUT_TOKENS = 4096;
// Typed loosely on purpose: these requests are meant to be wrong.
const user = (content: unknown): any => ({ model: 'demo', messages: [{ role: 'user', content }] });

/** Bad input gets a 400 that says what is wrong and what is allowed, over HTTP and on sockets. */
describe('error messages that say what is allowed', () => {
  const config = testConfig({ limits: { maxOutputTokens: MAX_OUTPUT_TOKENS }, models: [{ name: 'demo', provider: 'demo', options: {} }] });
  let api: RunningApi;
  let socket: ClientSocket;

  before(async () => {
    api = await createApi(config, {});
    socket = await connectSocket(api.url);
  });
  after(async () => {
    socket.close();
    await api.close();
    await deletePrefix(config.redis.prefix);
  });

  const post = async (body: string | Buffer | object, headers: Record<string, string> = {}, path = '/v1/generations') => {
    const response = await fetch(`${api.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, text, error: response.status >= 400 ? (JSON.parse(text) as OpenAIError).error : undefined };
  };

  it('bad message content names the accepted shapes, or the exact bad part', async () => {
    const wrongType = await post(user(5));
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.error?.param, 'messages.0.content');
    assert.match(wrongType.error!.message, /^messages\.0\.content: expected a string or an array of content parts: .*"type": "text".*"image_url"/);

    const badPart = await post(user([{ type: 'text', text: 'ok' }, { type: 'text', text: 5 }]));
    assert.equal(badPart.error?.param, 'messages.0.content.1.text');
    assert.match(badPart.error!.message, /expected string, received number/);

    const unknownPart = await post(user([{ type: 'audio', data: 'x' }]));
    assert.match(unknownPart.error!.message, /^messages\.0\.content\.0(\.type)?: .*"text".*"image_url"/);

    const system = await post({ model: 'demo', messages: [{ role: 'system', content: 7 }] });
    assert.match(system.error!.message, /^messages\.0\.content: expected a string or an array of text parts/);
    assert.doesNotMatch(JSON.stringify([wrongType, badPart, unknownPart, system].map((r) => r.error!.message)), /Invalid input"/);
  });

  it('a bad stop names the accepted shapes', async () => {
    for (const stop of [5, ['a', 'b', 'c', 'd', 'e'], { a: 1 }]) {
      const response = await post({ ...user('hi'), stop });
      assert.equal(response.status, 400);
      assert.equal(response.error?.param, 'stop');
      assert.equal(response.error?.message, 'stop: expected a string or an array of at most 4 strings');
    }
    assert.equal((await post({ ...user('hi'), stop: [1] })).error?.param, 'stop.0');
  });

  it('valid JSON that is not an object is told apart from JSON that does not parse', async () => {
    for (const [body, what] of [['null', 'null'], ['"hello"', 'a string'], ['42', 'a number'], ['[1]', 'an array'], ['true', 'a boolean']] as const) {
      for (const path of ['/v1/generations', '/v1/chat/completions']) {
        const response = await post(body, {}, path);
        assert.equal(response.status, 400, `${body} to ${path}`);
        assert.equal(response.error?.message, `expected a JSON object, got ${what}`, `${body} to ${path}`);
      }
    }
    const broken = await post('{"model": ');
    assert.equal(broken.status, 400);
    assert.match(broken.error!.message, /^request body is not valid JSON/);

    for (const payload of ['hello', 42, null]) {
      const ack = await socket.emitWithAck('generate', payload as never);
      assert.ok(!ack.ok);
      assert.match(ack.error.message, /^expected a JSON object, got (a string|a number|null)$/);
    }
  });

  it('a body that does not decompress says so; a gzip body that does is accepted', async () => {
    const bad = await post('{"model":"demo"}', { 'content-encoding': 'gzip' });
    assert.equal(bad.status, 400);
    assert.match(bad.error!.message, /^request body could not be decompressed/);
    assert.doesNotMatch(bad.error!.message, /incorrect header check/);
    const unsupported = await post('{}', { 'content-encoding': 'lzma' });
    assert.equal(unsupported.status, 415);
    assert.match(unsupported.error!.message, /Content-Encoding 'lzma'.*gzip/);
    const good = await post(gzipSync(JSON.stringify(user('hi'))), { 'content-encoding': 'gzip' });
    assert.equal(good.status, 202, good.text);
  });

  it('echoed values are cut short: a 100,000-character model name is not sent back whole', async () => {
    const model = 'm'.repeat(100_000);
    const response = await post({ ...user('hi'), model });
    assert.equal(response.status, 404);
    assert.equal(response.error?.code, 'model_not_found');
    assert.ok(response.text.length < 1000, `error body of ${response.text.length} bytes`);
    assert.match(response.error!.message, /100000 characters/);
    const ack = await socket.emitWithAck('generate', { ...user('hi'), model });
    assert.ok(!ack.ok && ack.error.message.length < 500);
    const generation = await fetch(`${api.url}/v1/generations/${'x'.repeat(50_000)}`);
    assert.ok((await generation.text()).length < 1000);
  });

  it('max_completion_tokens is accepted like max_tokens, and an error names the field the client sent', async () => {
    assert.equal((await post({ ...user('hi'), max_completion_tokens: 100 })).status, 202);
    assert.equal((await post({ ...user('hi'), max_tokens: 100 }, {}, '/v1/generations')).status, 202);
    const over = await post({ ...user('hi'), max_completion_tokens: MAX_OUTPUT_TOKENS + 1 }, {}, '/v1/chat/completions');
    assert.equal(over.status, 400);
    assert.equal(over.error?.param, 'max_completion_tokens');
    assert.equal(over.error?.message, `max_completion_tokens: at most ${MAX_OUTPUT_TOKENS} is allowed`);
    const legacy = await post({ ...user('hi'), max_tokens: MAX_OUTPUT_TOKENS + 1 });
    assert.equal(legacy.error?.param, 'max_tokens');
    const ack = await socket.emitWithAck('generate', { ...user('hi'), max_completion_tokens: MAX_OUTPUT_TOKENS + 1 });
    assert.ok(!ack.ok);
    assert.equal(ack.error.param, 'max_completion_tokens');
  });
});
