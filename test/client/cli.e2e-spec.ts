import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { DemoProvider } from '@tokenwire/providers';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';

const BIN = path.resolve(__dirname, '..', '..', '..', 'libs', 'client', 'dist', 'cli', 'tokenwire.js');
const DEMO_OPTIONS = { tokenDelayMs: 2, tokens: 12 };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `tokenwire` binary; `onStdout` may act on the process (e.g. send SIGINT). */
function tokenwire(args: string[], env: Record<string, string>, onStdout?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => {
      stdout += data.toString();
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the tokenwire CLI against a running gateway', () => {
  let gateway: TestGateway;
  let upstream: FakeOpenAIServer;
  let env: Record<string, string>;

  before(async () => {
    upstream = new FakeOpenAIServer();
    const baseUrl = await upstream.start();
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      models: [
        { name: 'demo', provider: 'demo', options: DEMO_OPTIONS },
        { name: 'slow', provider: 'openai-compatible', options: { baseUrl } },
      ],
    });
    env = { TOKENWIRE_URL: gateway.url, TOKENWIRE_API_KEY: await createKey(gateway.url, 'cli-tenant') };
  });
  after(async () => {
    await gateway.close();
    await upstream.stop();
  });

  it('chat streams the reply to stdout and exits 0', async () => {
    const run = await tokenwire(['chat', '-m', 'demo', 'hello', 'there'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'hello there' }]).join('')}\n`);
  });

  it('chat over SSE gives the same reply', async () => {
    const run = await tokenwire(['chat', '-m', 'demo', '--transport', 'sse', 'hello there'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'hello there' }]).join(''));
  });

  it('Ctrl-C cancels the generation upstream and exits 130', async () => {
    upstream.script = () => ({ tokens: Array.from({ length: 200 }, (_, i) => `t${i} `), tokenDelayMs: 20 });
    const before = upstream.requests.length;
    let interrupted = false;
    const run = await tokenwire(['chat', '-m', 'slow', 'long story'], env, (text, child) => {
      if (!interrupted && text.length > 10) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /cancelled/);
    const closed = await Promise.race([upstream.requests[before]!.closedEarly.then(() => true), new Promise<boolean>((r) => setTimeout(r, 3000, false))]);
    assert.ok(closed, 'the upstream saw its connection close');
  });

  it('errors: unknown model exits 1 with the message; bad usage exits 2 with help', async () => {
    const unknown = await tokenwire(['chat', '-m', 'nope', 'x'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /The model 'nope' does not exist \(model_not_found/);
    const usage = await tokenwire(['chat', 'no model given'], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /chat needs -m MODEL/);
    const badKey = await tokenwire(['chat', '-m', 'demo', 'x'], { ...env, TOKENWIRE_API_KEY: 'tw_wrong' });
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /invalid or revoked API key/);
  });

  it('--help works for every command', async () => {
    for (const args of [['--help'], ['chat', '--help'], ['keys', '--help']]) {
      const run = await tokenwire(args, env);
      assert.equal(run.code, 0, args.join(' '));
      assert.match(run.stdout, /tokenwire/);
    }
  });

  it('keys create, list and revoke with the operator token', async () => {
    const operator = { ...env, TOKENWIRE_API_KEY: OPERATOR_TOKEN };
    const created = await tokenwire(['keys', 'create', '--tenant', 'cli-made', '--name', 'laptop'], operator);
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^tw_/);
    const id = /created (key_\w+)/.exec(created.stderr)![1]!;
    const listed = await tokenwire(['keys', 'list', '--tenant', 'cli-made'], operator);
    assert.equal(listed.stdout, `${id}\tcli-made\tmember\tlaptop\n`);
    const chat = await tokenwire(['chat', '-m', 'demo', 'hi'], { ...env, TOKENWIRE_API_KEY: key });
    assert.equal(chat.code, 0, 'the new key works');
    assert.equal((await tokenwire(['keys', 'revoke', id], operator)).code, 0);
    assert.equal((await tokenwire(['chat', '-m', 'demo', 'hi'], { ...env, TOKENWIRE_API_KEY: key })).code, 1, 'the revoked key does not');
  });
});

describe('tokenwire batch', () => {
  let gateway: TestGateway;
  let env: Record<string, string>;

  before(async () => {
    gateway = await startGateway({ models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: 5, tokens: 6 } }] });
    env = { TOKENWIRE_URL: gateway.url };
  });
  after(() => gateway.close());

  it('submit --wait shows progress and exits 0; status and download print the results', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const os = await import('node:os');
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'tokenwire-batch-')), 'in.jsonl');
    writeFileSync(file, Array.from({ length: 25 }, (_, i) => JSON.stringify({ custom_id: `q${i}`, body: { model: 'demo', messages: [{ role: 'user', content: `q${i}` }] } })).join('\n'));
    const submitted = await tokenwire(['batch', 'submit', file, '--wait'], env);
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.trim();
    assert.match(id, /^batch_/);
    assert.match(submitted.stderr, /\[#+\] 25\/25 \(0 failed, 0 cancelled\) completed/);
    const status = await tokenwire(['batch', 'status', id], env);
    assert.match(status.stdout, /25\/25 .* completed/);
    const download = await tokenwire(['batch', 'download', id], env);
    const ids = download.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    assert.deepEqual(ids, Array.from({ length: 25 }, (_, i) => `q${i}`));
    const missing = await tokenwire(['batch', 'submit', '/no/such/file.jsonl'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read \/no\/such\/file\.jsonl/);
  });
});
