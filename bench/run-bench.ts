/**
 * `npm run bench`: the same load straight at a paced upstream (the limit), through
 * Tokenwire's OpenAI route, and through its Socket.IO path; plus fan-out, maximum
 * throughput and cancel latency. Every party is its own process; CPU and peak RSS
 * come from /proc. Writes bench/RESULTS.md.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadTask, StreamResult } from './load';

const root = path.resolve(__dirname, '..', '..');
const PACE_MS = 20;
const TOKENS = 100;
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,100,1000').split(',').map(Number);
const now = () => performance.timeOrigin + performance.now();

interface Proc {
  child: ChildProcess;
  name: string;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}
function peakRssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM'))!;
  return Math.round(Number(line.split(/\s+/)[1]) / 1024);
}
function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');

async function startUpstream(paceMs: number, tokens: number): Promise<{ proc: Proc; port: number }> {
  const child = fork(path.join(__dirname, 'upstream.js'), { env: { ...process.env, BENCH_PACE_MS: String(paceMs), BENCH_TOKENS: String(tokens) } });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  return { proc: { child, name: 'upstream' }, port };
}

async function startGateway(upstreamPort: number, fastPort: number): Promise<{ api: Proc; worker: Proc; url: string; metricsUrl: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tokenwire-bench-'));
  const config = path.join(dir, 'tokenwire.yaml');
  writeFileSync(
    config,
    [
      'models:',
      `  - { name: bench, provider: openai-compatible, options: { baseUrl: "http://127.0.0.1:${upstreamPort}/v1", includeUsage: false } }`,
      `  - { name: bench-fast, provider: openai-compatible, options: { baseUrl: "http://127.0.0.1:${fastPort}/v1", includeUsage: false } }`,
      'limits: { maxConcurrent: 1000000, requestsPerMinute: 100000000, tokensPerMinute: 1000000000 }',
    ].join('\n'),
  );
  const env = {
    ...process.env,
    TOKENWIRE_CONFIG: config,
    TOKENWIRE_REDIS_PREFIX: `bench-${Date.now()}`,
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    WORKER_CONCURRENCY: '2000',
    WORKER_METRICS_PORT: '0',
    TOKENWIRE_SSE_COMPRESSION: 'false',
  };
  // BENCH_CPU_PROF=1 writes V8 CPU profiles of api and worker to bench/out/ (open them in Chrome DevTools).
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(root, 'bench', 'out')}`] : [];
  const spawnApp = (_name: string, entry: string) =>
    spawn(process.execPath, [...profile, path.join(root, entry)], { env: { ...env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const api = spawnApp('api', 'apps/api/dist/main.js');
  const worker = spawnApp('worker', 'apps/worker/dist/main.js');
  const url = await new Promise<string>((resolve) => {
    let buffer = '';
    api.stdout!.on('data', (data: Buffer) => {
      buffer += data.toString();
      const match = /"url":"([^"]+)".*"msg":"api listening"/.exec(buffer);
      if (match) resolve(match[1]!);
    });
  });
  const metricsUrl = await new Promise<string>((resolve) => {
    let buffer = '';
    worker.stdout!.on('data', (data: Buffer) => {
      buffer += data.toString();
      const match = /"metricsUrl":"([^"]+)"/.exec(buffer);
      if (match) resolve(match[1]!);
    });
  });
  return { api: { child: api, name: 'api' }, worker: { child: worker, name: 'worker' }, url, metricsUrl };
}

/** Median of a Prometheus histogram (linear within the bucket), from the text exposition. */
function histogramMedianMs(text: string, name: string, labels: string): number {
  const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\S+)$`, 'gm'))]
    .filter((m) => m[1]!.includes(labels))
    .map((m) => ({ le: Number(/le="([^"]+)"/.exec(m[1]!)![1]!.replace('+Inf', 'Infinity')), count: Number(m[2]) }));
  const total = buckets.at(-1)?.count ?? 0;
  let previous = { le: 0, count: 0 };
  for (const bucket of buckets) {
    if (bucket.count >= total / 2) {
      const share = (total / 2 - previous.count) / Math.max(1, bucket.count - previous.count);
      return (previous.le + share * ((Number.isFinite(bucket.le) ? bucket.le : previous.le) - previous.le)) * 1000;
    }
    previous = bucket;
  }
  return NaN;
}

async function load(task: LoadTask): Promise<{ results: StreamResult[]; wallMs: number }> {
  const child = fork(path.join(__dirname, 'load.js'));
  child.send(task);
  const reply = await new Promise<{ results: StreamResult[]; wallMs: number }>((resolve) => child.once('message', resolve));
  await new Promise((r) => child.once('exit', r));
  return reply;
}

interface Row {
  mode: string;
  concurrency: number;
  ttftP50: number;
  ttftP99: number;
  latencyP50: number;
  latencyP99: number;
  tokensPerSecond: number;
  cpuPer1k: number;
  failed: number;
}

async function measure(task: LoadTask, gatewayProcs: Proc[]): Promise<Row> {
  const pids = gatewayProcs.map((p) => p.child.pid!);
  const cpuBefore = pids.map(cpuSeconds);
  const { results, wallMs } = await load(task);
  const cpu = pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - cpuBefore[i]!, 0);
  const ok = results.filter((r) => r.ok);
  const tokens = ok.reduce((n, r) => n + r.tokens, 0);
  return {
    mode: task.mode,
    concurrency: task.concurrency,
    ttftP50: percentile(ok.map((r) => r.ttftMs), 50),
    ttftP99: percentile(ok.map((r) => r.ttftMs), 99),
    latencyP50: percentile(ok.flatMap((r) => r.latenciesMs), 50),
    latencyP99: percentile(ok.flatMap((r) => r.latenciesMs), 99),
    tokensPerSecond: tokens / (wallMs / 1000),
    cpuPer1k: gatewayProcs.length ? (cpu / tokens) * 1000 : NaN,
    failed: results.length - ok.length,
  };
}

async function cancelLatency(url: string, upstreamPort: number, runs: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < runs; i++) {
    const marker = `cancel-${i}-${Date.now()}`;
    const created = await fetch(`${url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: marker }] }),
    });
    const { id } = (await created.json()) as { id: string };
    // Wait for the first token so the upstream call is live.
    for (;;) {
      const view = (await (await fetch(`${url}/v1/generations/${id}`)).json()) as { text: string };
      if (view.text) break;
      await sleep(5);
    }
    const sentAt = now();
    await fetch(`${url}/v1/generations/${id}`, { method: 'DELETE' });
    for (let waited = 0; waited < 5000; waited += 5) {
      const closes = (await (await fetch(`http://127.0.0.1:${upstreamPort}/closes`)).json()) as Record<string, number>;
      if (closes[marker]) {
        latencies.push(closes[marker]! - sentAt);
        break;
      }
      await sleep(5);
    }
  }
  return latencies;
}

async function main(): Promise<void> {
  const paced = await startUpstream(PACE_MS, TOKENS);
  const fast = await startUpstream(0, 2000);
  const gateway = await startGateway(paced.port, fast.port);
  const gatewayProcs = [gateway.api, gateway.worker];
  const rows: Row[] = [];
  const progress = (row: Row) => console.log(JSON.stringify(row));

  // Warm-up (discarded): JIT, connection pools and Redis scripts, so the first measured row is not a cold start.
  for (const mode of ['direct', 'openai', 'socket'] as const) {
    await load({ mode, url: mode === 'direct' ? `http://127.0.0.1:${paced.port}` : gateway.url, concurrency: 20, model: 'bench' });
  }

  for (const concurrency of CONCURRENCY) {
    rows.push(await measure({ mode: 'direct', url: `http://127.0.0.1:${paced.port}`, concurrency, model: 'bench' }, []));
    progress(rows.at(-1)!);
    rows.push(await measure({ mode: 'openai', url: gateway.url, concurrency, model: 'bench' }, gatewayProcs));
    progress(rows.at(-1)!);
    rows.push(await measure({ mode: 'socket', url: gateway.url, concurrency, model: 'bench' }, gatewayProcs));
    progress(rows.at(-1)!);
  }
  const fanout = await measure({ mode: 'fanout', url: gateway.url, concurrency: 1, subscribers: 1000, model: 'bench' }, gatewayProcs);
  progress(fanout);
  const throughput: Row[] = [];
  for (const mode of ['openai', 'socket'] as const) {
    throughput.push(await measure({ mode, url: gateway.url, concurrency: 50, model: 'bench-fast' }, gatewayProcs));
    progress(throughput.at(-1)!);
  }
  const workerMetrics = await (await fetch(gateway.metricsUrl)).text();
  const stages = {
    queueWaitMs: histogramMedianMs(workerMetrics, 'tokenwire_queue_wait_seconds', 'model="bench"'),
    upstreamTtftMs: histogramMedianMs(workerMetrics, 'tokenwire_ttft_seconds', 'stage="upstream"'),
    totalTtftMs: histogramMedianMs(workerMetrics, 'tokenwire_ttft_seconds', 'stage="total"'),
  };
  console.log(JSON.stringify(stages));
  const cancels = await cancelLatency(gateway.url, paced.port, 20);
  const rss = { api: peakRssMb(gateway.api.child.pid!), worker: peakRssMb(gateway.worker.child.pid!), upstream: peakRssMb(paced.proc.child.pid!) };

  // SIGTERM so that --cpu-prof can write its profile.
  for (const proc of [gateway.api, gateway.worker]) proc.child.kill('SIGTERM');
  for (const proc of [paced.proc, fast.proc]) proc.child.kill('SIGKILL');
  await Promise.all([gateway.api, gateway.worker].map((p) => new Promise((r) => (p.child.exitCode !== null ? r(0) : p.child.once('exit', r)))));
  writeFileSync(path.join(root, 'bench', 'RESULTS.md'), report(rows, fanout, throughput, cancels, rss, stages));
  console.log(readFileSync(path.join(root, 'bench', 'RESULTS.md'), 'utf8'));
  process.exit(0);
}

function report(rows: Row[], fanout: Row, throughput: Row[], cancels: number[], rss: Record<string, number>, stages: Record<string, number>): string {
  const direct = new Map(rows.filter((r) => r.mode === 'direct').map((r) => [r.concurrency, r]));
  const lines = [
    '# Benchmark results',
    '',
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}.`,
    `Run: ${new Date().toISOString()}, load average before the run ${os.loadavg().map((n) => n.toFixed(2)).join(' ')}.`,
    `Upstream: ${TOKENS} tokens per stream at ${PACE_MS} ms/token. api, worker, Redis, upstream and load generator are separate processes on this one machine.`,
    '"Added" = through Tokenwire minus straight at the upstream, same concurrency. Per-token latency = arrival at the client − the upstream\'s write time (carried in the token).',
    '',
    '| path | C | TTFT p50 (ms) | TTFT p99 (ms) | added TTFT p50 / p99 (ms) | per-token latency p50 / p99 (ms) | added per-token p99 (ms) | tokens/s | gateway CPU s / 1k tokens | failed |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const base = direct.get(row.concurrency)!;
    const added = row.mode === 'direct' ? '—' : `${fmt(row.ttftP50 - base.ttftP50)} / ${fmt(row.ttftP99 - base.ttftP99)}`;
    const addedLatency = row.mode === 'direct' ? '—' : fmt(row.latencyP99 - base.latencyP99);
    const name = { direct: 'direct to upstream (the limit)', openai: 'Tokenwire OpenAI SSE route', socket: 'Tokenwire Socket.IO' }[row.mode as 'direct'];
    lines.push(
      `| ${name} | ${row.concurrency} | ${fmt(row.ttftP50)} | ${fmt(row.ttftP99)} | ${added} | ${fmt(row.latencyP50, 2)} / ${fmt(row.latencyP99, 2)} | ${addedLatency} | ${Math.round(row.tokensPerSecond)} | ${fmt(row.cpuPer1k, 3)} | ${row.failed} |`,
    );
  }
  lines.push(
    '',
    `**Fan-out**: one generation (${TOKENS} tokens at ${PACE_MS} ms) subscribed by 1,000 Socket.IO clients: per-token delivery latency p50 ${fmt(fanout.latencyP50, 2)} ms, p99 ${fmt(fanout.latencyP99, 2)} ms; ${fanout.failed} clients missed the end.`,
    '',
    '**Maximum throughput** (unpaced upstream, 50 streams × 2,000 tokens, one api + one worker):',
    ...throughput.map((row) => `- ${row.mode === 'openai' ? 'OpenAI SSE route' : 'Socket.IO'}: ${Math.round(row.tokensPerSecond)} tokens/s, ${fmt(row.cpuPer1k, 3)} gateway CPU s per 1k tokens, per-token latency p99 ${fmt(row.latencyP99, 1)} ms.`),
    '',
    `**Cancel latency** (DELETE /v1/generations/:id until the upstream sees its socket close, ${cancels.length} runs): p50 ${fmt(percentile(cancels, 50), 2)} ms, p99 ${fmt(percentile(cancels, 99), 2)} ms.`,
    '',
    `**Peak RSS**: api ${rss.api} MB, worker ${rss.worker} MB, fake upstream ${rss.upstream} MB.`,
    '',
    `**Where time to first token goes** (worker histograms, medians over every generation of the run): queue wait ${fmt(stages.queueWaitMs)} ms, pick-up to first upstream token ${fmt(stages.upstreamTtftMs)} ms, enqueue to first token ${fmt(stages.totalTtftMs)} ms.`,
    '',
  );
  return lines.join('\n');
}

void main();
