import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { freePort } from '../support/free-port';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { PrivateRedis } from '../support/redis-server';
import { connectSocket, createKey, OPERATOR_TOKEN, type ClientSocket } from '../support/tenants';
import { waitFor } from '../support/wait';

const root = path.resolve(__dirname, '..', '..', '..'); // from test/dist/ops
const DASHBOARD = path.join(root, 'deploy', 'grafana', 'tokenwire-dashboard.json');
const ALERTS = path.join(root, 'deploy', 'prometheus', 'alerts.yml');
const PROMETHEUS_CONFIG = path.join(root, 'deploy', 'prometheus', 'prometheus.yml');
// Grafana's `$__rate_interval`, fixed here: wide enough to hold the load at 1 s scrapes while the checks run.
const RATE_INTERVAL = '2m';

// No npm package ships Prometheus; Debian's `prometheus` package does (.ci/run installs it when missing).
const missingTool = ['prometheus', 'promtool'].find((tool) => spawnSync(tool, ['--version']).error !== undefined);
const skip = missingTool ? `${missingTool} is not installed: Debian/Ubuntu: sudo apt-get install -y prometheus (.ci/run installs it)` : false;

interface Query {
  from: string;
  expr: string;
}

function dashboardQueries(): Query[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  return dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ from: `panel "${panel.title}"`, expr: target.expr.replaceAll('$__rate_interval', RATE_INTERVAL) })),
  );
}

/** Each alert's signal: its expression without the final `<comparison> <threshold>` (healthy load must not fire them). */
function alertSignals(): Query[] {
  const rules = parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  return rules.groups.flatMap((group) =>
    group.rules.map((rule) => {
      const signal = rule.expr.replace(/\s*(==|!=|>=|<=|>|<)\s*[0-9.e+-]+\s*$/, '');
      assert.notEqual(signal, rule.expr, `alert ${rule.alert}: expected "<signal> <comparison> <threshold>"`);
      return { from: `alert ${rule.alert}`, expr: signal };
    }),
  );
}

describe('Prometheus scraping a running api and worker', { skip }, () => {
  const redis = new PrivateRedis(['--maxmemory', '1gb']);
  const processes: AppProcess[] = [];
  const sockets: ClientSocket[] = [];
  let prometheus: ChildProcess;
  let prometheusUrl: string;
  let prometheusDir: string;
  let api: AppProcess;

  async function promQuery(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
    const body = (await response.json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    assert.equal(body.status, 'success', `${expr}: ${body.error}`);
    return body.data.result;
  }

  before(async () => {
    await redis.start();
    const upstreamThatRefuses = `http://127.0.0.1:${await freePort()}/v1`;
    const env = {
      REDIS_URL: redis.url,
      TOKENWIRE_CONFIG: writeConfigFile({
        auth: { enabled: true, adminToken: OPERATOR_TOKEN },
        models: [
          { name: 'demo', provider: 'demo', options: { tokenDelayMs: 5, tokens: 30 } },
          { name: 'broken', provider: 'openai-compatible', options: { baseUrl: upstreamThatRefuses } },
        ],
        // One failure opens the broken model's breaker and keeps it open for the whole test.
        upstream: { maxAttempts: 1, breakerFailureThreshold: 1, breakerResetMs: 600_000 },
        tenants: { tiny: { limits: { requestsPerMinute: 1 } } },
      }),
    };
    const [apiProcess, worker] = await Promise.all([spawnApp('api', env), spawnApp('worker', env)]);
    processes.push(apiProcess, worker);
    api = apiProcess;

    // deploy/prometheus/prometheus.yml (the compose setup) with this test's targets, rules and a 1 s pace.
    const config = parseYaml(readFileSync(PROMETHEUS_CONFIG, 'utf8')) as {
      global: Record<string, string>;
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    config.global = { scrape_interval: '1s', evaluation_interval: '1s' };
    config.rule_files = [ALERTS];
    const targets: Record<string, string> = { 'tokenwire-api': new URL(api.metricsUrl!).host, 'tokenwire-worker': new URL(worker.metricsUrl!).host };
    for (const job of config.scrape_configs) {
      assert.ok(targets[job.job_name], `a target for scrape job ${job.job_name}`);
      job.static_configs = [{ targets: [targets[job.job_name]!] }];
    }
    prometheusDir = mkdtempSync(path.join(os.tmpdir(), 'tokenwire-prometheus-'));
    writeFileSync(path.join(prometheusDir, 'prometheus.yml'), toYaml(config));
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    let stderr = '';
    prometheus = spawn(
      'prometheus',
      [`--config.file=${path.join(prometheusDir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(prometheusDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr!.on('data', (data: Buffer) => (stderr = (stderr + data.toString()).slice(-4000)));
    await waitFor(
      'Prometheus to scrape the api and the worker',
      async () => {
        if (prometheus.exitCode !== null) throw new Error(`prometheus exited with ${prometheus.exitCode}: ${stderr}`);
        const up = await promQuery('up == 1').catch(() => []);
        return up.length === 2;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    prometheus?.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await redis.destroy();
    if (prometheusDir) rmSync(prometheusDir, { recursive: true, force: true });
  });

  async function chat(key: string, model: string, prompt: string): Promise<number> {
    const response = await fetch(`${api.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: prompt }] }),
    });
    await response.text(); // the whole stream
    return response.status;
  }

  it('under load, every dashboard query and every alert signal returns data', async () => {
    const [acme, tiny] = [await createKey(api.url!, 'acme'), await createKey(api.url!, 'tiny')];
    sockets.push(await connectSocket(api.url!, acme));
    // A counter's series appears at its first increment; rate() sees increases only after Prometheus has a sample
    // of it. So one generation first, and the load once that has been scraped: once the worker's last counter of a
    // generation (tokenwire_generations_total, counted after its terminal event, after the client saw the end) is
    // in Prometheus. Waiting for the first-token histogram instead let a scrape taken mid-stream pass, and when the
    // load then ended before the next scrape, the generations counter's first sample was its final value: its
    // rate() stayed 0 and the error-ratio alert's signal NaN (a CI run).
    assert.equal(await chat(acme, 'demo', 'warm up'), 200);
    await waitFor('Prometheus to hold the first generation', async () => (await promQuery('tokenwire_generations_total{outcome="done"}')).length > 0, {
      timeoutMs: 15_000,
      intervalMs: 250,
    });
    // Streams for one tenant, a tenant over its request limit, and a model whose upstream refuses connections.
    const statuses = await Promise.all([
      ...Array.from({ length: 16 }, (_, i) => chat(acme, 'demo', `load ${i}`)),
      ...Array.from({ length: 3 }, (_, i) => chat(tiny, 'demo', `tiny ${i}`)),
      chat(acme, 'broken', 'to a dead upstream'),
    ]);
    assert.ok(statuses.filter((status) => status === 429).length >= 2, `tiny was refused: ${statuses.join(',')}`);

    const queries = [...dashboardQueries(), ...alertSignals()];
    assert.ok(queries.length >= 20, `the dashboard and alerts hold the queries (${queries.length})`);
    const empty = new Map<string, string>();
    await waitFor(
      'every query to return a finite sample',
      async () => {
        empty.clear();
        for (const { from, expr } of queries) {
          const result = await promQuery(expr);
          if (!result.some((series) => Number.isFinite(Number(series.value[1])))) empty.set(from, `${expr} = ${JSON.stringify(result.map((series) => series.value[1]))}`);
        }
        return empty.size === 0;
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; still without data:\n${[...empty].map(([from, expr]) => `  ${from}: ${expr}`).join('\n')}`);
    });

    // The signals are the ones the alerts look at: the dead upstream's open breaker fires its alert.
    await waitFor('the open breaker alert to be pending or firing', async () => (await promQuery('ALERTS{alertname="TokenwireCircuitBreakerOpen", model="broken"}')).length > 0, {
      timeoutMs: 15_000,
      intervalMs: 500,
    });
    const perTenant = await promQuery(`sum by (tenant) (tokenwire_tenant_tokens_total)`);
    assert.deepEqual(perTenant.map((series) => series.metric.tenant).sort(), ['acme', 'tiny']);
  });

  it('promtool accepts the alert rules', () => {
    const check = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /SUCCESS: 5 rules found/);
  });
});
