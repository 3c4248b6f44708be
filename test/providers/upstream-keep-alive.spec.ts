import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtInProviderFactories, type LanguageModelProvider } from '@tokenwire/providers';
import { waitFor } from '../support/wait';

/**
 * An upstream connection is reused by the next call once a stream ended normally: a new TCP
 * connection per generation costs a connect on the way to the first token. A cancelled call still
 * closes its connection at once.
 */
describe('upstream keep-alive', () => {
  let server: http.Server;
  let baseUrl: string;
  let connections = 0;
  let closedConnections = 0;
  const slowRequests = new Set<http.ServerResponse>();

  before(async () => {
    server = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (content: string, finish: string | null = null) =>
          response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`);
        if (body.includes('slow')) {
          // Streams until the client goes away.
          slowRequests.add(response);
          const timer = setInterval(() => chunk('.'), 10);
          response.on('close', () => clearInterval(timer));
          return;
        }
        if (request.url === '/v1/messages') {
          // Anthropic's event sequence, ending with message_stop.
          const event = (type: string, payload: object) => response.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`);
          event('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'm', usage: { input_tokens: 3, output_tokens: 0 } } });
          event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
          for (const text of ['a', 'b']) event('content_block_delta', { index: 0, delta: { type: 'text_delta', text } });
          event('content_block_stop', { index: 0 });
          event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 2 } });
          event('message_stop', {});
          setImmediate(() => response.end());
          return;
        }
        chunk('a');
        chunk('b');
        chunk('', 'stop');
        response.write('data: [DONE]\n\n');
        // As servers do: the end of the body follows [DONE] in a separate write.
        setImmediate(() => response.end());
      });
    });
    server.on('connection', (socket) => {
      connections++;
      socket.on('close', () => closedConnections++);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const provider = (): LanguageModelProvider => builtInProviderFactories['openai-compatible']!({ baseUrl });
  const anthropic = (): LanguageModelProvider => builtInProviderFactories.anthropic!({ baseUrl: baseUrl.replace(/\/v1$/, ''), apiKey: 'test-key' });
  const text = async (p: LanguageModelProvider, content: string, signal = new AbortController().signal) => {
    let out = '';
    for await (const part of p.stream({ model: 'm', messages: [{ role: 'user', content }], params: {} }, { signal })) {
      if (part.type === 'text-delta') out += part.text;
    }
    return out;
  };

  it('three generations one after another share one connection', async () => {
    const p = provider();
    const before = connections;
    for (let i = 0; i < 3; i++) assert.equal(await text(p, `hello ${i}`), 'ab');
    // At most one new: the pool may still hold a connection from an earlier call to this host.
    assert.ok(connections - before <= 1, `${connections - before} connections for 3 sequential generations`);
  });

  it('Anthropic: three messages one after another share one connection', async () => {
    const p = anthropic();
    const before = connections;
    for (let i = 0; i < 3; i++) assert.equal(await text(p, `hello ${i}`), 'ab');
    assert.ok(connections - before <= 1, `${connections - before} connections for 3 sequential messages`);
  });

  it('a cancelled generation closes its connection', async () => {
    const p = provider();
    const controller = new AbortController();
    const closedBefore = closedConnections;
    const reading = text(p, 'slow', controller.signal).catch((error: unknown) => error);
    await waitFor('the slow stream to start', () => slowRequests.size > 0);
    controller.abort(new Error('cancelled'));
    assert.ok((await reading) instanceof Error);
    await waitFor('the upstream connection to close', () => closedConnections > closedBefore);
  });
});
