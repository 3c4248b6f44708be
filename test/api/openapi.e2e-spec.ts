import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';
import { jsonCaller, openApiChecker, type OpenApiDoc } from '../support/openapi-check';

/** Live responses of the main routes, validated against the served OpenAPI document. */
describe('OpenAPI document', () => {
  let gateway: TestGateway;
  let doc: OpenApiDoc;
  let check: Awaited<ReturnType<typeof openApiChecker>>['check'];
  let key: string;

  before(async () => {
    gateway = await startGateway({ auth: { enabled: true, adminToken: OPERATOR_TOKEN }, models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 1, tokens: 8 } }] });
    ({ doc, check } = await openApiChecker(gateway.url));
    key = await createKey(gateway.url, 'docs-tenant', 'admin');
  });
  after(() => gateway.close());

  const call = jsonCaller(() => gateway.url, () => key);


  it('is OpenAPI 3.1 and has a reference page', async () => {
    assert.equal((doc as unknown as { openapi: string }).openapi, '3.1.0');
    const page = await fetch(`${gateway.url}/docs`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Tokenwire API[\s\S]*openapi\.json/);
  });

  it('generation routes answer as documented, including errors', async () => {
    const request = { model: 'demo', messages: [{ role: 'user', content: 'document me' }] };
    const created = await call('POST', '/v1/generations', request);
    check('/v1/generations', 'post', created.status, created.body);
    const id = (created.body as { id: string }).id;

    const { events } = await readSse(`${gateway.url}/v1/generations/${id}/events`, { headers: { authorization: `Bearer ${key}` } });
    for (const event of events) check('/v1/generations/{id}/events', 'get', 200, JSON.parse(event.data), 'text/event-stream');

    const view = await call('GET', `/v1/generations/${id}`);
    check('/v1/generations/{id}', 'get', view.status, view.body);
    const conflict = await call('DELETE', `/v1/generations/${id}`);
    check('/v1/generations/{id}', 'delete', conflict.status, conflict.body);
    const missing = await call('GET', '/v1/generations/nope');
    check('/v1/generations/{id}', 'get', missing.status, missing.body);
    const invalid = await call('POST', '/v1/generations', { model: 'demo', messages: [] });
    check('/v1/generations', 'post', invalid.status, invalid.body);
    const unauthorized = await call('GET', '/v1/usage', undefined, { authorization: 'Bearer wrong' });
    check('/v1/usage', 'get', unauthorized.status, unauthorized.body);
  });

  it('OpenAI routes answer as documented, streaming and not', async () => {
    const completion = await call('POST', '/v1/chat/completions', { model: 'demo', messages: [{ role: 'user', content: 'x' }] });
    check('/v1/chat/completions', 'post', completion.status, completion.body);
    const { events } = await readSse(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'demo', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'x' }] }),
    });
    const frames = events.filter((e) => e.data !== '[DONE]');
    assert.ok(frames.length > 8);
    for (const frame of frames) check('/v1/chat/completions', 'post', 200, JSON.parse(frame.data), 'text/event-stream');
    const models = await call('GET', '/v1/models');
    check('/v1/models', 'get', models.status, models.body);
    const unknown = await call('POST', '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    check('/v1/chat/completions', 'post', unknown.status, unknown.body);
  });

  it('batch routes answer as documented', async () => {
    const line = { custom_id: 'doc-1', body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } };
    const created = await call('POST', '/v1/batches', [line]);
    check('/v1/batches', 'post', created.status, created.body);
    const id = (created.body as { id: string }).id;
    let batch = created;
    for (let i = 0; i < 100 && (batch.body as { status: string }).status !== 'completed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      batch = await call('GET', `/v1/batches/${id}`);
    }
    check('/v1/batches/{id}', 'get', batch.status, batch.body);
    const output = await fetch(`${gateway.url}/v1/batches/${id}/output`, { headers: { authorization: `Bearer ${key}` } });
    for (const text of (await output.text()).split('\n').filter(Boolean)) check('/v1/batches/{id}/output', 'get', 200, JSON.parse(text), 'application/jsonl');
    const ended = await call('POST', `/v1/batches/${id}/cancel`);
    check('/v1/batches/{id}/cancel', 'post', ended.status, ended.body);
    const invalid = await call('POST', '/v1/batches', [{ custom_id: 'x' }]);
    check('/v1/batches', 'post', invalid.status, invalid.body);
  });

  it('tenant and operations routes answer as documented', async () => {
    const usage = await call('GET', '/v1/usage');
    check('/v1/usage', 'get', usage.status, usage.body);
    const created = await call('POST', '/v1/admin/keys', { role: 'member', name: 'doc' });
    check('/v1/admin/keys', 'post', created.status, created.body);
    const list = await call('GET', '/v1/admin/keys');
    check('/v1/admin/keys', 'get', list.status, list.body);
    const revoked = await call('DELETE', `/v1/admin/keys/${(created.body as { id: string }).id}`);
    check('/v1/admin/keys/{id}', 'delete', revoked.status, revoked.body);
    const health = await call('GET', '/healthz');
    check('/healthz', 'get', health.status, health.body);
    const ready = await call('GET', '/readyz');
    check('/readyz', 'get', ready.status, ready.body);
  });
});
