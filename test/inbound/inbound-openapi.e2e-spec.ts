import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../support/gateway';
import { jsonCaller, openApiChecker } from '../support/openapi-check';
import { readSse } from '../support/sse-client';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';

/** Live responses of the inbound API views (models, Anthropic Messages, Responses, Files), validated against the served OpenAPI document. */
describe('OpenAPI document: inbound API views', () => {
  let gateway: TestGateway;
  let check: Awaited<ReturnType<typeof openApiChecker>>['check'];
  let key: string;

  before(async () => {
    gateway = await startGateway({ auth: { enabled: true, adminToken: OPERATOR_TOKEN }, models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 1, tokens: 8 } }] });
    ({ check } = await openApiChecker(gateway.url));
    key = await createKey(gateway.url, 'inbound-docs-tenant', 'admin');
  });
  after(() => gateway.close());

  const call = jsonCaller(() => gateway.url, () => key);


  it('GET /v1/models/{model} answers as documented', async () => {
    const model = await call('GET', '/v1/models/demo');
    check('/v1/models/{model}', 'get', model.status, model.body);
    const missing = await call('GET', '/v1/models/nope');
    assert.equal(missing.status, 404);
    check('/v1/models/{model}', 'get', missing.status, missing.body);
  });

  it('Anthropic Messages routes answer as documented, streaming and not, errors included', async () => {
    const request = { model: 'demo', max_tokens: 16, messages: [{ role: 'user', content: 'document me' }] };
    const message = await call('POST', '/v1/messages', request);
    assert.equal(message.status, 200);
    check('/v1/messages', 'post', message.status, message.body);
    const { events } = await readSse(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ ...request, stream: true }),
    });
    assert.ok(events.length > 6);
    for (const event of events) check('/v1/messages', 'post', 200, JSON.parse(event.data), 'text/event-stream');
    const invalid = await call('POST', '/v1/messages', { model: 'demo', messages: [] });
    assert.equal(invalid.status, 400);
    check('/v1/messages', 'post', invalid.status, invalid.body);
    const unknown = await call('POST', '/v1/messages', { ...request, model: 'nope' });
    check('/v1/messages', 'post', unknown.status, unknown.body);
    const unauthorized = await call('POST', '/v1/messages', request, { authorization: 'Bearer wrong' });
    check('/v1/messages', 'post', unauthorized.status, unauthorized.body);
    const count = await call('POST', '/v1/messages/count_tokens', { model: 'demo', messages: [{ role: 'user', content: 'count me' }] });
    check('/v1/messages/count_tokens', 'post', count.status, count.body);
  });

  it('Responses routes answer as documented: create, stream, background, retrieve, resume, cancel, delete, errors', async () => {
    const created = await call('POST', '/v1/responses', { model: 'demo', input: 'document me', instructions: 'be brief' });
    assert.equal(created.status, 200);
    check('/v1/responses', 'post', created.status, created.body);
    const id = (created.body as { id: string }).id;
    const { events } = await readSse(`${gateway.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'demo', input: [{ role: 'user', content: 'stream me' }], stream: true }),
    });
    assert.ok(events.length > 6);
    for (const event of events) check('/v1/responses', 'post', 200, JSON.parse(event.data), 'text/event-stream');
    const retrieved = await call('GET', `/v1/responses/${id}`);
    check('/v1/responses/{response_id}', 'get', retrieved.status, retrieved.body);
    const replay = await readSse(`${gateway.url}/v1/responses/${id}?stream=true&starting_after=2`, { headers: { authorization: `Bearer ${key}` } });
    assert.ok(replay.events.length > 0);
    for (const event of replay.events) check('/v1/responses/{response_id}', 'get', 200, JSON.parse(event.data), 'text/event-stream');
    const badQuery = await call('GET', `/v1/responses/${id}?stream=true&starting_after=-3`);
    assert.equal(badQuery.status, 400);
    check('/v1/responses/{response_id}', 'get', badQuery.status, badQuery.body);
    const background = await call('POST', '/v1/responses', { model: 'demo', input: 'later', background: true });
    check('/v1/responses', 'post', background.status, background.body);
    const cancelled = await call('POST', `/v1/responses/${(background.body as { id: string }).id}/cancel`);
    check('/v1/responses/{response_id}/cancel', 'post', cancelled.status, cancelled.body);
    const notBackground = await call('POST', `/v1/responses/${id}/cancel`);
    assert.equal(notBackground.status, 400);
    check('/v1/responses/{response_id}/cancel', 'post', notBackground.status, notBackground.body);
    const deleted = await call('DELETE', `/v1/responses/${id}`);
    check('/v1/responses/{response_id}', 'delete', deleted.status, deleted.body);
    const missing = await call('GET', `/v1/responses/${id}`);
    assert.equal(missing.status, 404);
    check('/v1/responses/{response_id}', 'get', missing.status, missing.body);
    const invalid = await call('POST', '/v1/responses', { model: 'demo' });
    assert.equal(invalid.status, 400);
    check('/v1/responses', 'post', invalid.status, invalid.body);
  });

  it('Files routes and the batch made from a file answer as documented', async () => {
    const lines = `${JSON.stringify({ custom_id: 'doc-1', method: 'POST', url: '/v1/chat/completions', body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } })}\n`;
    const upload = async (text: string, purpose = 'batch') => {
      const form = new FormData();
      form.append('purpose', purpose);
      form.append('file', new Blob([text], { type: 'application/jsonl' }), 'doc.jsonl');
      const response = await fetch(`${gateway.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
      return { status: response.status, body: (await response.json()) as unknown };
    };
    const created = await upload(lines);
    assert.equal(created.status, 200);
    check('/v1/files', 'post', created.status, created.body);
    const fileId = (created.body as { id: string }).id;
    const invalid = await upload('{"custom_id": 1}\n');
    assert.equal(invalid.status, 400);
    check('/v1/files', 'post', invalid.status, invalid.body);
    const list = await call('GET', '/v1/files');
    check('/v1/files', 'get', list.status, list.body);
    const file = await call('GET', `/v1/files/${fileId}`);
    check('/v1/files/{file_id}', 'get', file.status, file.body);
    const content = await fetch(`${gateway.url}/v1/files/${fileId}/content`, { headers: { authorization: `Bearer ${key}` } });
    for (const text of (await content.text()).split('\n').filter(Boolean)) check('/v1/files/{file_id}/content', 'get', 200, JSON.parse(text), 'application/jsonl');

    const batch = await call('POST', '/v1/batches', { input_file_id: fileId, endpoint: '/v1/chat/completions', completion_window: '24h' });
    assert.equal(batch.status, 200);
    check('/v1/batches', 'post', batch.status, batch.body);
    const batchId = (batch.body as { id: string }).id;
    let done = batch;
    for (let i = 0; i < 200 && (done.body as { status: string }).status !== 'completed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      done = await call('GET', `/v1/batches/${batchId}`);
    }
    check('/v1/batches/{id}', 'get', done.status, done.body);
    const outputId = (done.body as { output_file_id: string }).output_file_id;
    const outputFile = await call('GET', `/v1/files/${outputId}`);
    check('/v1/files/{file_id}', 'get', outputFile.status, outputFile.body);
    const output = await fetch(`${gateway.url}/v1/files/${outputId}/content`, { headers: { authorization: `Bearer ${key}` } });
    for (const text of (await output.text()).split('\n').filter(Boolean)) check('/v1/files/{file_id}/content', 'get', 200, JSON.parse(text), 'application/jsonl');
    const badBatch = await call('POST', '/v1/batches', { input_file_id: fileId, endpoint: '/v1/embeddings', completion_window: '24h' });
    assert.equal(badBatch.status, 400);
    check('/v1/batches', 'post', badBatch.status, badBatch.body);
    const deleted = await call('DELETE', `/v1/files/${fileId}`);
    check('/v1/files/{file_id}', 'delete', deleted.status, deleted.body);
    const gone = await call('GET', `/v1/files/${fileId}`);
    assert.equal(gone.status, 404);
    check('/v1/files/{file_id}', 'get', gone.status, gone.body);
  });
});
