import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';
import { waitFor } from '../support/wait';

/**
 * A stored Responses-API response lives as long as its generation's log: answered in full while the log is
 * there, a 404 once it is gone, whichever of `generations.ttlSeconds` and `finishedTtlSeconds` is longer.
 */
describe('Stored responses follow their generation\'s retention', () => {
  const upstream = new FakeOpenAIServer();
  let baseUrl: string;
  const gateways: TestGateway[] = [];

  before(async () => {
    baseUrl = await upstream.start();
    upstream.script = () => ({ tokens: ['kept', ' reply'] });
  });
  after(async () => {
    await Promise.all(gateways.map((gateway) => gateway.close()));
    await upstream.stop();
  });

  async function clientFor(generations: { ttlSeconds: number; finishedTtlSeconds: number }): Promise<{ client: OpenAI; gateway: TestGateway; key: string }> {
    const gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      generations,
      models: [{ name: 'upstream', provider: 'openai-compatible', options: { baseUrl } }],
    });
    gateways.push(gateway);
    const key = await createKey(gateway.url, 'retention-tenant');
    return { client: new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 }), gateway, key };
  }

  it('finished generations kept longer than ttlSeconds: the response is still answered after ttlSeconds', async () => {
    const { client } = await clientFor({ ttlSeconds: 2, finishedTtlSeconds: 60 });
    const response = await client.responses.create({ model: 'upstream', input: 'remember this' });
    assert.equal(response.status, 'completed');
    // Past ttlSeconds from the response's creation (the stored record's whole life before this fix).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const retrieved = await client.responses.retrieve(response.id);
    assert.equal(retrieved.status, 'completed');
    assert.equal(retrieved.output_text, 'kept reply');
    const next = await client.responses.create({ model: 'upstream', input: 'and then?', previous_response_id: response.id });
    assert.equal(next.status, 'completed');
    const sent = upstream.requests.at(-1)!.body.messages as Array<{ role: string; content: string }>;
    assert.deepEqual(
      sent.map((m) => [m.role, m.content]),
      [['user', 'remember this'], ['assistant', 'kept reply'], ['user', 'and then?']],
    );
  });

  it('finished generations kept shorter than ttlSeconds: once the generation expired, the response is a 404, not an empty in_progress one', async () => {
    const { client, gateway, key } = await clientFor({ ttlSeconds: 600, finishedTtlSeconds: 1 });
    const response = await client.responses.create({ model: 'upstream', input: 'forget this soon' });
    assert.equal(response.status, 'completed');
    const generationId = response.id.replace(/^resp_/, '');
    await waitFor(
      'the generation to expire',
      async () => (await fetch(`${gateway.url}/v1/generations/${generationId}`, { headers: { authorization: `Bearer ${key}` } })).status === 404,
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    await assert.rejects(client.responses.retrieve(response.id), OpenAI.NotFoundError);
    await assert.rejects(client.responses.create({ model: 'upstream', input: 'x', previous_response_id: response.id }), OpenAI.NotFoundError);
  });
});
