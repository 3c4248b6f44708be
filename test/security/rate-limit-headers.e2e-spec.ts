import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';

const REQUESTS_PER_MINUTE = 8;
const TOKENS_PER_MINUTE = 100_000;
const RESET = /^(\d+ms|\d+s|\d+m\d+s)$/;

/** OpenAI's x-ratelimit-* headers on every generating response, Retry-After on a 429. */
describe('rate-limit headers as OpenAI sends them', () => {
  let gateway: TestGateway;

  before(async () => {
    gateway = await startGateway({
      limits: { requestsPerMinute: REQUESTS_PER_MINUTE, tokensPerMinute: TOKENS_PER_MINUTE },
      models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 0, tokens: 5 } }],
    });
  });
  after(async () => {
    await gateway.close();
  });

  const body = (extra: object = {}) => JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'hi' }], ...extra });
  const post = (path: string, extra: object = {}) =>
    fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(extra) });

  const assertHeaders = (headers: Headers, what: string) => {
    assert.equal(headers.get('x-ratelimit-limit-requests'), String(REQUESTS_PER_MINUTE), what);
    assert.equal(headers.get('x-ratelimit-limit-tokens'), String(TOKENS_PER_MINUTE), what);
    assert.match(headers.get('x-ratelimit-reset-requests') ?? '', RESET, what);
    assert.match(headers.get('x-ratelimit-reset-tokens') ?? '', RESET, what);
    const remaining = Number(headers.get('x-ratelimit-remaining-requests'));
    assert.ok(Number.isInteger(remaining) && remaining >= 0, `${what}: remaining-requests ${headers.get('x-ratelimit-remaining-requests')}`);
    assert.ok(Number(headers.get('x-ratelimit-remaining-tokens')) > 0, what);
    return remaining;
  };

  it('every generating response carries them, counting down; a 429 adds Retry-After', async () => {
    const remaining: number[] = [];

    // The openai SDK reads them from a streamed and a non-streamed chat completion.
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    remaining.push(assertHeaders(completion.response.headers, 'chat completion'));
    const { data: stream, response } = await client.chat.completions.create({ model: 'demo', stream: true, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    for await (const _chunk of stream) void _chunk;
    remaining.push(assertHeaders(response.headers, 'streamed chat completion'));

    const job = await post('/v1/generations');
    assert.equal(job.status, 202);
    remaining.push(assertHeaders(job.headers, 'POST /v1/generations'));
    const { id } = (await job.json()) as { id: string };
    await readSse(`${gateway.url}/v1/generations/${id}/events`);

    // The other inbound APIs that generate: Anthropic Messages and OpenAI Responses.
    const messages = await fetch(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'demo', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(messages.status, 200, await messages.clone().text());
    remaining.push(assertHeaders(messages.headers, 'POST /v1/messages'));
    await messages.arrayBuffer();
    const responses = await post('/v1/responses', { input: 'hi', messages: undefined });
    assert.equal(responses.status, 200, await responses.clone().text());
    remaining.push(assertHeaders(responses.headers, 'POST /v1/responses'));
    await responses.arrayBuffer();

    assert.deepEqual(remaining, [...remaining].sort((a, b) => b - a), `remaining-requests counts down: ${remaining}`);
    assert.ok(remaining[0]! < REQUESTS_PER_MINUTE);

    // Spend the rest of the minute's requests; the next one is a 429 with every header.
    let refused: Response | undefined;
    for (let i = 0; i < REQUESTS_PER_MINUTE + 2 && !refused; i++) {
      const attempt = await post('/v1/chat/completions');
      if (attempt.status === 429) refused = attempt;
      else await attempt.arrayBuffer();
    }
    assert.ok(refused, 'the limit answers 429');
    assertHeaders(refused.headers, '429');
    assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'rate_limited');
  });
});
