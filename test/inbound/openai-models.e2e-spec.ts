import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway, type TestGateway } from '../support/gateway';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';

describe('GET /v1/models/{id}, driven by the openai SDK', () => {
  let gateway: TestGateway;
  let client: OpenAI;

  before(async () => {
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      models: [
        { name: 'demo', provider: 'demo' },
        { name: 'org/slashed-model', provider: 'demo' },
      ],
    });
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: await createKey(gateway.url, 'models-tenant'), maxRetries: 0 });
  });
  after(() => gateway.close());

  it('retrieves a configured model as OpenAI answers it', async () => {
    const model = await client.models.retrieve('demo');
    assert.deepEqual(Object.keys(model).sort(), ['created', 'id', 'object', 'owned_by']);
    assert.equal(model.id, 'demo');
    assert.equal(model.object, 'model');
    assert.equal(model.owned_by, 'tokenwire');
    const listed = (await client.models.list()).data.find((m) => m.id === 'demo');
    assert.deepEqual(model, listed);
  });

  it('retrieves a model whose name contains a slash', async () => {
    const model = await client.models.retrieve('org/slashed-model');
    assert.equal(model.id, 'org/slashed-model');
  });

  it('answers an unknown model with a 404 model_not_found', async () => {
    await assert.rejects(client.models.retrieve('gpt-nonexistent'), (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError);
      assert.equal(error.code, 'model_not_found');
      assert.match(error.message, /gpt-nonexistent/);
      return true;
    });
  });

  it('requires a key, and takes it as x-api-key too', async () => {
    const anonymous = await fetch(`${gateway.url}/v1/models/demo`);
    assert.equal(anonymous.status, 401);
    const key = await createKey(gateway.url, 'models-tenant');
    const viaHeader = await fetch(`${gateway.url}/v1/models/demo`, { headers: { 'x-api-key': key } });
    assert.equal(viaHeader.status, 200);
    assert.equal(((await viaHeader.json()) as { id: string }).id, 'demo');
    const wrong = await fetch(`${gateway.url}/v1/models/demo`, { headers: { 'x-api-key': 'tw_wrong' } });
    assert.equal(wrong.status, 401);
  });
});
