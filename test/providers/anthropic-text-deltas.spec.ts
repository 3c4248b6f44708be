import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtInProviderFactories, UpstreamProtocolError, type LanguageModelProvider } from '@tokenwire/providers';

/**
 * Anthropic text deltas skip schema validation when their shape is right (one per token); a delta
 * of the wrong shape must still end the call with a typed protocol error, never pass as text.
 */
describe('Anthropic text deltas', () => {
  let server: http.Server;
  let baseUrl: string;
  /** The `content_block_delta` payload the next request gets between two good text deltas. */
  let middle: object;

  before(async () => {
    server = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        const event = (type: string, payload: object) => response.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`);
        event('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'm', usage: { input_tokens: 3, output_tokens: 0 } } });
        event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
        event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'a' } });
        event('content_block_delta', middle);
        event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'c' } });
        event('content_block_stop', { index: 0 });
        event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } });
        event('message_stop', {});
        response.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const provider = (): LanguageModelProvider => builtInProviderFactories.anthropic!({ baseUrl, apiKey: 'test-key' });
  const text = async () => {
    let out = '';
    for await (const part of provider().stream({ model: 'm', messages: [{ role: 'user', content: 'hi' }], params: {} }, { signal: new AbortController().signal })) {
      if (part.type === 'text-delta') out += part.text;
    }
    return out;
  };

  it('well-formed text deltas arrive in order', async () => {
    middle = { index: 0, delta: { type: 'text_delta', text: 'b' } };
    assert.equal(await text(), 'abc');
  });

  for (const [what, payload] of [
    ['text that is not a string', { index: 0, delta: { type: 'text_delta', text: 5 } }],
    ['no text', { index: 0, delta: { type: 'text_delta' } }],
    ['an index that is not an integer', { index: 0.5, delta: { type: 'text_delta', text: 'b' } }],
    ['no index', { delta: { type: 'text_delta', text: 'b' } }],
    ['a delta that is not an object', { index: 0, delta: 'text_delta' }],
  ] as const) {
    it(`a text delta with ${what} is an UpstreamProtocolError`, async () => {
      middle = payload;
      await assert.rejects(text(), (error: unknown) => {
        assert.ok(error instanceof UpstreamProtocolError, `got ${String(error)}`);
        return true;
      });
    });
  }
});
