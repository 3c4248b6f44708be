import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProviderRegistry, checkOllamaHealth, discoverOllamaModels, loadProviderPlugin, type ProviderChunk } from '@tokenwire/providers';
import { OllamaProtocolServer } from '../support/protocols/http-protocol-servers';

const ECHO_PLUGIN = path.resolve(__dirname, '..', '..', '..', 'examples', 'echo-plugin');

describe('external provider plugins', () => {
  it('loads the example plugin by path and streams through it', async () => {
    const provider = loadProviderPlugin({ module: ECHO_PLUGIN, options: { prefix: 'echo: ', delayMs: 1 } });
    const chunks: ProviderChunk[] = [];
    for await (const chunk of provider.stream({ model: 'x', messages: [{ role: 'user', content: 'one two three' }], params: {} }, { signal: new AbortController().signal })) chunks.push(chunk);
    assert.equal(chunks.map((c) => (c.type === 'text-delta' ? c.text : '')).join(''), 'echo: one two three');
    assert.deepEqual(chunks.at(-1), { type: 'finish', reason: 'stop' });
  });

  it('a registry model can name a plugin', () => {
    const registry = new ProviderRegistry([{ name: 'echo', provider: 'plugin', options: { module: ECHO_PLUGIN } }]);
    assert.equal(registry.resolve('echo')?.provider.id, 'echo-plugin');
  });

  it('refuses modules that do not export a provider, saying what is missing', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tokenwire-plugin-'));
    writeFileSync(path.join(dir, 'not-a-function.js'), 'module.exports = { createProvider: 42 };');
    writeFileSync(path.join(dir, 'half.js'), 'exports.createProvider = () => ({ specVersion: "v0", id: "half" });');
    assert.throws(() => loadProviderPlugin({ module: path.join(dir, 'missing.js') }), /plugin ".*missing\.js": cannot load it/);
    assert.throws(() => loadProviderPlugin({ module: path.join(dir, 'not-a-function.js') }), /export a function createProvider/);
    assert.throws(() => loadProviderPlugin({ module: path.join(dir, 'half.js') }), /lacks specVersion "v1", a stream\(request, \{ signal \}\) method/);
    assert.throws(
      () => new ProviderRegistry([{ name: 'bad', provider: 'plugin', options: { module: path.join(dir, 'half.js') } }]),
      /models\.bad\.options: plugin/,
    );
  });
});

describe('Ollama discovery and health', () => {
  const server = new OllamaProtocolServer();
  before(() => server.start());
  after(() => server.stop());

  it('registers the models /api/tags reports, and names the servers that did not answer', async () => {
    const { models, unreachable } = await discoverOllamaModels([server.baseUrl, 'http://127.0.0.1:1']);
    assert.deepEqual(models, server.models.map((name) => ({ name, provider: 'ollama', options: { baseUrl: server.baseUrl } })));
    assert.deepEqual(unreachable, ['http://127.0.0.1:1']);
  });

  it('the health check says up for a live server and down for a dead one', async () => {
    assert.equal(await checkOllamaHealth(server.baseUrl), true);
    assert.equal(await checkOllamaHealth('http://127.0.0.1:1'), false);
  });
});
