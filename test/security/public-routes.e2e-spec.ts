import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createApi, type RunningApi } from '@tokenwire/api';
import { testConfig } from '../support/gateway';
import { deletePrefix } from '../support/redis';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';

/** The routes that answer without a key, as the README's "Security model" lists them. */
const PUBLIC_ROUTES = ['GET /', 'GET /healthz', 'GET /readyz', 'GET /docs', 'GET /openapi.json'];

interface OpenAIError {
  error: { message: string; type: string; param: string | null; code: string };
}

/** With auth on: what answers without a key, and what an attacker's path tricks reach. */
describe('public routes and side doors (auth on)', () => {
  const config = testConfig({ auth: { enabled: true, adminToken: OPERATOR_TOKEN }, models: [{ name: 'demo', provider: 'demo', options: {} }] });
  let api: RunningApi;
  let key: string;

  before(async () => {
    api = await createApi(config, {});
    key = await createKey(api.url, 'acme');
  });
  after(async () => {
    await api.close();
    await deletePrefix(config.redis.prefix);
  });

  const get = (path: string, token?: string) =>
    fetch(`${api.url}${path}`, { redirect: 'manual', headers: token ? { authorization: `Bearer ${token}` } : {} });

  const assertOpenAI404 = async (response: Response, what: string) => {
    assert.equal(response.status, 404, `${what}: status`);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/, `${what}: a JSON error, not a file`);
    const body = (await response.json()) as OpenAIError;
    assert.equal(body.error.code, 'not_found', what);
    assert.equal(body.error.type, 'invalid_request_error', what);
  };

  it('only the listed routes answer without a key; every other documented route is a 401', async () => {
    const document = (await (await get('/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
    const open: string[] = [];
    for (const [template, operations] of Object.entries(document.paths)) {
      const path = template.replace(/\{[^}]+\}/g, 'x');
      for (const method of Object.keys(operations)) {
        const response = await fetch(`${api.url}${path}`, { method: method.toUpperCase(), redirect: 'manual' });
        await response.arrayBuffer();
        if (response.status !== 401) open.push(`${method.toUpperCase()} ${template}`);
      }
    }
    for (const route of PUBLIC_ROUTES) assert.ok([200, 503].includes((await get(route.split(' ')[1]!)).status), `${route} answers`);
    assert.deepEqual(open.filter((route) => !PUBLIC_ROUTES.includes(route)), [], 'documented routes open without a key');
  });

  it('/metrics is not on the public port; Prometheus scrapes it on api.metricsPort', async () => {
    await assertOpenAI404(await get('/metrics'), 'GET /metrics on the public port');
    await assertOpenAI404(await get('/metrics', key), 'GET /metrics on the public port with a key');
    assert.notEqual(new URL(api.metricsUrl).port, new URL(api.url).port);
    const scrape = await fetch(api.metricsUrl);
    assert.equal(scrape.status, 200);
    assert.match(await scrape.text(), /tokenwire_queue_depth/);
  });

  it('encoded path traversal under /v1 never reaches the playground files', async () => {
    for (const prefix of ['/v1/generations/', '/v1/batches/']) {
      for (const trick of ['..%2F..%2Findex.html', '..%2F..%2F', '..%2f..%2fplayground.js', '%2E%2E%2F%2E%2E%2Findex.html']) {
        const anonymous = await get(prefix + trick);
        const text = await anonymous.text();
        assert.ok([401, 404].includes(anonymous.status), `${prefix}${trick} without a key answered ${anonymous.status}`);
        assert.doesNotMatch(text, /<html|<!doctype|playground/i, `${prefix}${trick} without a key`);
        const keyed = await get(prefix + trick, key);
        const keyedText = await keyed.text();
        assert.ok([400, 404].includes(keyed.status), `${prefix}${trick} with a key answered ${keyed.status}`);
        assert.equal((JSON.parse(keyedText) as OpenAIError).error.type, 'invalid_request_error');
      }
    }
  });

  it('nothing under /v1 is a static file, and unknown routes are 404 in the OpenAI error shape', async () => {
    for (const path of ['/v1/index.html', '/v1/playground.js', '/v1/', '/v1', '/..%2Findex.html', '/nope', '/v1/nope', '/v1/chat/nope', '/index.html/..%2F']) {
      await assertOpenAI404(await get(path, key), path);
    }
    const post = await fetch(`${api.url}/v1/nope`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{}' });
    await assertOpenAI404(post, 'POST /v1/nope');
    // The playground itself is still there.
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    assert.equal((await get('/playground.js')).status, 200);
  });
});
