import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { waitFor } from '../support/wait';

const root = path.resolve(__dirname, '..', '..', '..'); // from test/dist/ops
const START_ALL = path.join(root, 'scripts', 'start-all.mjs');
// Booting an api and a worker took over 30 s on 2 cores shared with the rest of the suite; a deadline, not a sleep.
const STARTUP_DEADLINE_MS = 90_000;

interface Started {
  child: ChildProcess;
  output: () => string;
  stop(): Promise<number | null>;
}

/** `npm start`'s launcher (api + worker) on the suite's Redis; `terminal` runs it under a pseudo-terminal (util-linux `script`). */
function startAll(prefix: string, { terminal, env = {} }: { terminal: boolean; env?: Record<string, string> }): Started {
  const fullEnv = {
    PATH: process.env.PATH ?? '',
    REDIS_URL: testRedisUrl(),
    TOKENWIRE_REDIS_PREFIX: prefix,
    HOST: '127.0.0.1',
    PORT: '0',
    API_METRICS_PORT: '0',
    WORKER_METRICS_PORT: '0',
    OLLAMA_DISCOVER_URLS: 'off',
    LOG_LEVEL: 'info',
    ...env,
  };
  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(START_ALL)}`;
  const child = terminal
    ? spawn('script', ['-qfec', command, '/dev/null'], { env: fullEnv, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(process.execPath, [START_ALL], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr!.on('data', (data: Buffer) => (output += data.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    async stop() {
      // On the terminal, Ctrl-C (the line discipline turns it into SIGINT for the whole foreground group).
      if (terminal) child.stdin!.write('\x03');
      else child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The first of `count` consecutive ports that are free right now. */
async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const servers: net.Server[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const server = net.createServer();
        await new Promise<void>((resolve, reject) => server.once('error', reject).listen(base + i, '127.0.0.1', resolve));
        servers.push(server);
      }
      return base;
    } catch (error) {
      if (attempt > 50) throw error;
    } finally {
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    }
  }
}

describe('npm start', () => {
  const prefixes: string[] = [];
  const running: Started[] = [];
  after(async () => {
    for (const started of running) if (started.child.exitCode === null) started.child.kill('SIGKILL');
    for (const prefix of prefixes) await deletePrefix(prefix);
  });
  const start = (options: Parameters<typeof startAll>[1]) => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const started = startAll(prefix, options);
    running.push(started);
    return started;
  };

  it('on a terminal: readable log lines and a banner with working links once the api and every worker are up', async () => {
    assert.equal(spawnSync('script', ['--version']).error, undefined, 'util-linux `script` gives this test its terminal');
    const started = start({ terminal: true, env: { TOKENWIRE_WORKERS: '2' } });
    await waitFor('the banner', () => /try\s+curl/.test(started.output()), { timeoutMs: STARTUP_DEADLINE_MS });
    // eslint-disable-next-line no-control-regex
    const text = started.output().replace(/\x1b\[[0-9;]*m/g, '');
    const playground = /playground\s+(http:\/\/\S+)/.exec(text)![1]!;
    const link = (label: string) => new RegExp(`${label}\\s+(http://\\S+)`).exec(text)?.[1];
    assert.match(text, /INFO \(worker\): worker started/);
    assert.match(text, /INFO \(api\): api listening/);
    assert.ok(!text.split(/\r?\n/).some((line) => line.trimStart().startsWith('{"')), `no JSON lines on a terminal:\n${text}`);
    assert.doesNotMatch(text, /Mapped \{/, 'route mappings are not logged at info');
    assert.match(text, /models\s+demo, demo-fast/);
    assert.match(text, /auth\s+off/);
    assert.match(text, new RegExp(`redis\\s+redis://127\\.0\\.0\\.1:\\d+/? \\(prefix ${prefixes.at(-1)}\\)`));

    const page = await fetch(playground);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    assert.equal((await fetch(link('API docs')!)).status, 200);
    assert.equal((await fetch(link('queue dashboard')!)).status, 200);
    assert.match(text, /Tokenwire is up \(api \+ 2 workers\)/);
    assert.equal(text.match(/worker started/g)?.length, 2, 'two worker processes');
    const metricsLinks = /metrics\s+(http:\/\/\S+) \(api\), (http:\/\/\S+), (http:\/\/\S+) \(workers\)/.exec(text);
    assert.ok(metricsLinks, `the banner lists every worker's metrics:\n${text}`);
    assert.notEqual(metricsLinks[2], metricsLinks[3], 'each worker its own metrics port');
    for (const url of metricsLinks.slice(1)) assert.match(await (await fetch(url)).text(), /tokenwire_/);
    await started.stop();
    await assert.rejects(fetch(playground), 'Ctrl-C stopped the api');
  });

  it("with the default metrics ports (workers count up from the api's port minus one), the api and every worker start", async () => {
    // The defaults' layout (worker 9464, api 9465) on three free ports, so nothing else on the machine is in the way.
    const base = await freePortRun(3);
    const started = start({ terminal: false, env: { TOKENWIRE_WORKERS: '2', WORKER_METRICS_PORT: String(base), API_METRICS_PORT: String(base + 1) } });
    const up = () => /"api listening"/.test(started.output()) && started.output().match(/"worker started"/g)?.length === 2;
    await waitFor('api and both workers to be up', () => up() || started.child.exitCode !== null, { timeoutMs: STARTUP_DEADLINE_MS });
    assert.ok(up(), `api and both workers up:\n${started.output()}`);
    const metricsUrls = started
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{"'))
      .map((line) => JSON.parse(line) as { metricsUrl?: string })
      .flatMap((line) => (line.metricsUrl ? [line.metricsUrl] : []));
    assert.equal(new Set(metricsUrls).size, 3, `three metrics ports: ${metricsUrls.join(', ')}`);
    for (const url of metricsUrls) assert.match(await (await fetch(url)).text(), /tokenwire_/);
    await started.stop();
  });

  it('not on a terminal: every line on stdout is a JSON log line', async () => {
    const started = start({ terminal: false, env: { TOKENWIRE_WORKERS: '1' } });
    await waitFor('api and worker to be up', () => /"api listening"/.test(started.output()) && /"worker started"/.test(started.output()), { timeoutMs: STARTUP_DEADLINE_MS });
    const lines = started.output().split('\n').filter(Boolean);
    await started.stop();
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a JSON line: ${line}`);
    assert.ok(lines.some((line) => JSON.parse(line).service === 'worker'));
  });

  it('LOG_FORMAT=json keeps JSON lines on a terminal too', async () => {
    const started = start({ terminal: true, env: { LOG_FORMAT: 'json', TOKENWIRE_WORKERS: '1' } });
    await waitFor('api and worker to be up', () => /"api listening"/.test(started.output()) && /"worker started"/.test(started.output()), { timeoutMs: STARTUP_DEADLINE_MS });
    const lines = started.output().split(/\r?\n/).filter((line) => line.trim());
    await started.stop();
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a JSON line: ${line}`);
  });
});
