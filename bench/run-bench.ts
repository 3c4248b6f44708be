/**
 * `npm run bench`: the same load straight at a paced fake upstream (the limit),
 * through Tokenwire's OpenAI route, and through its Socket.IO path, at each
 * concurrency, and through the Portkey gateway (a peer proxy, npm @portkey-ai/gateway);
 * each C twice: every stream opened at once (a burst) and opens spread evenly over one
 * stream's duration; cancel latency under that load; one generation fanned out to 1,000
 * sockets; and an unpaced maximum-throughput run. Every party is its own process
 * (upstream, api, worker, Redis, load generators); CPU time and peak RSS of each
 * come from /proc. Writes bench/RESULTS.md.
 *
 * Knobs (env): BENCH_CONCURRENCY=1,100,1000  BENCH_ONLY=rows,fanout,throughput
 * BENCH_LOAD_PROCS (load-generator processes for C ≥ 500 and fan-out; default 2)
 * BENCH_SPREAD_MS (the window the spread arrivals open over; default one stream, 2000)
 * BENCH_CPU_PROF=1 (V8 CPU profiles of api and worker in bench/out/)
 * BENCH_RESULTS=<file> (where to write the table; default bench/RESULTS.md).
 */
import { execSync, fork, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findRedisPid, forkLoad, freePort, portkeyHeaders, startPortkey, waitFor, writeBenchConfig, type Proc as WatchedProc } from './bench-processes';
import type { LoadTask, StreamResult } from './load';

const root = path.resolve(__dirname, '..', '..');
const PACE_MS = 20;
const TOKENS = 100;
const FAST_TOKENS = 2000;
const FAST_STREAMS = 50;
const FANOUT_SOCKETS = 1000;
const C1_ROUNDS = 10;
const CANCEL_PROBES = 10;
const SDK_MAX_CONCURRENCY = 100;
/** Worker processes: as `npm start` runs them, one per core, unless BENCH_WORKERS says otherwise. */
const WORKERS = Number(process.env.BENCH_WORKERS ?? os.availableParallelism());
const IDLE_MS = 5000;
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,100,1000').split(',').map(Number);
const ONLY = new Set((process.env.BENCH_ONLY ?? 'rows,fanout,throughput').split(','));
const LOAD_PROCS = Number(process.env.BENCH_LOAD_PROCS ?? 2);
const RESULTS = process.env.BENCH_RESULTS ?? path.join(root, 'bench', 'RESULTS.md');
const SPREAD_MS = Number(process.env.BENCH_SPREAD_MS ?? PACE_MS * TOKENS);
const now = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- processes and /proc

interface Proc extends WatchedProc {
  /** Several processes counted as one (the workers): CPU and peak RSS are their sums. */
  members?: Proc[];
}

function cpuSeconds(proc: Proc): number {
  if (proc.members) return proc.members.reduce((sum, member) => sum + cpuSeconds(member), 0);
  const { pid } = proc;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime in clock ticks (CLK_TCK = 100)
  } catch {
    return NaN;
  }
}
function peakRssMb(proc: Proc): number {
  if (proc.members) return proc.members.reduce((sum, member) => sum + peakRssMb(member), 0);
  const { pid } = proc;
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM'))!;
    return Math.round(Number(line.split(/\s+/)[1]) / 1024);
  } catch {
    return NaN;
  }
}
/** CPU seconds all processes on the machine used so far (from /proc/stat; idle and iowait excluded). */
function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100;
}

/** Resets the peak RSS (VmHWM) to the current RSS, so each row reports its own peak. */
function resetPeakRss(proc: Proc): void {
  for (const member of proc.members ?? []) resetPeakRss(member);
  try {
    writeFileSync(`/proc/${proc.pid}/clear_refs`, '5');
  } catch {
    // not permitted: the peak then covers the run so far
  }
}

/** The private Redis as a watched process. */
function findRedis(): Proc | undefined {
  const pid = findRedisPid();
  return pid === undefined ? undefined : { name: 'redis', pid };
}

async function startUpstream(name: string, paceMs: number, tokens: number): Promise<{ proc: Proc; url: string }> {
  const child = fork(path.join(__dirname, 'upstream.js'), { env: { ...process.env, BENCH_PACE_MS: String(paceMs), BENCH_TOKENS: String(tokens) } });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  return { proc: { name, pid: child.pid!, child }, url: `http://127.0.0.1:${port}` };
}

interface Gateway {
  api: Proc;
  /** Every worker process, counted as one. */
  worker: Proc;
  url: string;
  /** Each worker's /metrics. */
  metricsUrls: string[];
}

async function startGateway(upstreamUrl: string, fastUrl: string): Promise<Gateway> {
  const config = writeBenchConfig({ bench: upstreamUrl, 'bench-fast': fastUrl });
  const port = await freePort();
  const env = {
    ...process.env,
    TOKENWIRE_CONFIG: config,
    TOKENWIRE_REDIS_PREFIX: `bench-${process.pid}-${Date.now()}`,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    WORKER_CONCURRENCY: '2000',
    API_METRICS_PORT: '0',
  };
  // BENCH_CPU_PROF=1: V8 CPU profiles of api and worker in bench/out/ (node bench/top-functions.mjs <file>).
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(root, 'bench', 'out')}`] : [];
  const spawnApp = (name: string, entry: string, extraEnv: Record<string, string> = {}): Proc => {
    const child = spawn(process.execPath, [...profile, path.join(root, entry)], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'inherit', 'inherit'] });
    return { name, pid: child.pid!, child };
  };
  const api = spawnApp('api', 'apps/api/dist/main.js');
  const metricsPorts = await Promise.all(Array.from({ length: WORKERS }, () => freePort()));
  const members = metricsPorts.map((metricsPort, i) => spawnApp(`worker-${i + 1}`, 'apps/worker/dist/main.js', { WORKER_METRICS_PORT: String(metricsPort) }));
  const worker: Proc = { name: 'worker', pid: members[0]!.pid, members };
  const url = `http://127.0.0.1:${port}`;
  const metricsUrls = metricsPorts.map((metricsPort) => `http://127.0.0.1:${metricsPort}/metrics`);
  for (const probe of [`${url}/readyz`, ...metricsUrls]) await waitFor(probe);
  return { api, worker, url, metricsUrls };
}

// ---------------------------------------------------------------- statistics

function percentile(values: ArrayLike<number>, p: number): number {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
function flat(results: StreamResult[], pick: (r: StreamResult) => number[]): Float64Array {
  const total = results.reduce((n, r) => n + pick(r).length, 0);
  const out = new Float64Array(total);
  let i = 0;
  for (const r of results) for (const v of pick(r)) out[i++] = v;
  return out;
}

/** Bucket counts of a Prometheus histogram (cumulative, by `le`), from the text exposition. */
function histogram(text: string, name: string, labels: string): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    if (!m[1]!.includes(labels)) continue;
    // Summed: the scrapes of several workers are read as one.
    const le = Number(/le="([^"]+)"/.exec(m[1]!)![1]!.replace('+Inf', 'Infinity'));
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return buckets;
}
/** Median (linear within its bucket) of what a histogram gained between two scrapes, in ms. */
function medianBetween(before: string, after: string, name: string, labels: string): number {
  const a = histogram(before, name, labels);
  const b = [...histogram(after, name, labels)].map(([le, count]) => ({ le, count: count - (a.get(le) ?? 0) }));
  const total = b.at(-1)?.count ?? 0;
  if (!total) return NaN;
  let previous = { le: 0, count: 0 };
  for (const bucket of b) {
    if (bucket.count >= total / 2) {
      const share = (total / 2 - previous.count) / Math.max(1, bucket.count - previous.count);
      return (previous.le + share * ((Number.isFinite(bucket.le) ? bucket.le : previous.le) - previous.le)) * 1000;
    }
    previous = bucket;
  }
  return NaN;
}

// ---------------------------------------------------------------- load

interface LoadRun {
  results: StreamResult[];
  wallMs: number;
  /** CPU seconds of each process while the load ran. */
  cpu: Record<string, number>;
  /** Peak RSS (MB) of each process during the load (since its reset). */
  rss: Record<string, number>;
  cancels: StreamResult[];
  /** CPU used by every other process on the machine during the load, % of one core. */
  otherPct: number;
  stages?: { queueWaitMs: number; upstreamTtftMs: number; totalTtftMs: number };
}

/**
 * Runs `task` split over `procs` load-generator processes (each its share of the
 * streams), plus optional cancel probes alongside, and accounts every process.
 */
async function runLoad(task: LoadTask, procs: number, watched: Proc[], options: { cancel?: LoadTask; metricsUrls?: string[] } = {}): Promise<LoadRun> {
  const shares = Array.from({ length: procs }, (_, i) => Math.floor(task.concurrency / procs) + (i < task.concurrency % procs ? 1 : 0)).filter((n) => n > 0);
  const loads = await Promise.all(shares.map((concurrency, i) => forkLoad({ ...task, concurrency, markerPrefix: `${task.markerPrefix}-p${i}` })));
  const cancel = options.cancel ? await forkLoad(options.cancel) : undefined;
  const scrape = async (urls: string[]) => (await Promise.all(urls.map(async (url) => (await fetch(url)).text()))).join('\n');
  const metricsBefore = options.metricsUrls ? await scrape(options.metricsUrls) : '';
  for (const proc of watched) resetPeakRss(proc);
  const cpuBefore = watched.map((p) => cpuSeconds(p));
  const machineBefore = machineBusySeconds();
  for (const { child } of loads) child.send({ type: 'start' });
  cancel?.child.send({ type: 'start' });
  const replies = await Promise.all(loads.map((l) => l.reply));
  const cpu: Record<string, number> = {};
  const rss: Record<string, number> = {};
  watched.forEach((p, i) => {
    cpu[p.name] = cpuSeconds(p) - cpuBefore[i]!;
    rss[p.name] = peakRssMb(p);
  });
  cpu.load = replies.reduce((sum, r) => sum + r.cpuSeconds, 0);
  rss.load = Math.max(...replies.map((r) => r.maxRssMb));
  const cancelReply = cancel ? await cancel.reply : undefined;
  const cancels = cancelReply?.results ?? [];
  const ours = Object.values(cpu).reduce((a, b) => a + b, 0) + (cancelReply?.cpuSeconds ?? 0);
  const wallMs = Math.max(...replies.map((r) => r.endedAt)) - Math.min(...replies.map((r) => r.startedAt));
  // Everything else on the machine (other people's work, the kernel, this orchestrator), as % of one core.
  const otherPct = ((machineBusySeconds() - machineBefore - ours) / (wallMs / 1000)) * 100;
  const run: LoadRun = {
    results: replies.flatMap((r) => r.results),
    wallMs,
    cpu,
    rss,
    cancels,
    otherPct,
  };
  if (options.metricsUrls) {
    const after = await scrape(options.metricsUrls);
    run.stages = {
      queueWaitMs: medianBetween(metricsBefore, after, 'tokenwire_queue_wait_seconds', `model="${task.model}"`),
      upstreamTtftMs: medianBetween(metricsBefore, after, 'tokenwire_ttft_seconds', 'stage="upstream"'),
      totalTtftMs: medianBetween(metricsBefore, after, 'tokenwire_ttft_seconds', 'stage="total"'),
    };
  }
  return run;
}

type Arrival = 'burst' | 'spread';

interface Row {
  mode: 'direct' | 'openai' | 'sdk' | 'socket' | 'portkey' | 'fanout';
  concurrency: number;
  arrival: Arrival;
  streams: number;
  failed: number;
  ttftP50: number;
  ttftP99: number;
  gapP50: number;
  gapP99: number;
  latencyP50: number;
  latencyP99: number;
  tokens: number;
  tokensPerSecond: number;
  /** CPU seconds per 1,000 delivered tokens, per process. */
  cpuPer1k: Record<string, number>;
  rss: Record<string, number>;
  cancelMs: number[];
  cancelFailed: number;
  stages?: LoadRun['stages'];
  wallMs: number;
  otherPct: number;
}

function toRow(mode: Row['mode'], concurrency: number, run: LoadRun, arrival: Arrival = 'burst'): Row {
  const ok = run.results.filter((r) => r.ok);
  const tokens = ok.reduce((n, r) => n + r.tokens, 0);
  const latencies = flat(ok, (r) => r.latenciesMs);
  const gaps = flat(ok, (r) => r.gapsMs);
  const cpuPer1k: Record<string, number> = {};
  for (const [name, seconds] of Object.entries(run.cpu)) cpuPer1k[name] = (seconds / tokens) * 1000;
  return {
    mode,
    concurrency,
    arrival,
    streams: run.results.length,
    failed: run.results.length - ok.length,
    ttftP50: percentile(ok.map((r) => r.ttftMs), 50),
    ttftP99: percentile(ok.map((r) => r.ttftMs), 99),
    gapP50: percentile(gaps, 50),
    gapP99: percentile(gaps, 99),
    latencyP50: percentile(latencies, 50),
    latencyP99: percentile(latencies, 99),
    tokens,
    tokensPerSecond: tokens / (run.wallMs / 1000),
    cpuPer1k,
    rss: run.rss,
    cancelMs: run.cancels.filter((r) => r.ok).map((r) => r.cancelMs!),
    cancelFailed: run.cancels.filter((r) => !r.ok).length,
    stages: run.stages,
    wallMs: run.wallMs,
    otherPct: run.otherPct,
  };
}

const progress = (label: string, row: Row) =>
  console.log(
    `${label.padEnd(22)} C=${String(row.concurrency).padEnd(5)} ${row.arrival.padEnd(6)} ttft p50/p99 ${fmt(row.ttftP50)}/${fmt(row.ttftP99)} gap p99 ${fmt(row.gapP99)} lat p50/p99 ${fmt(row.latencyP50)}/${fmt(row.latencyP99)} ` +
      `tok/s ${Math.round(row.tokensPerSecond)} failed ${row.failed}` +
      (row.cancelMs.length ? ` cancel p50/p99 ${fmt(percentile(row.cancelMs, 50))}/${fmt(percentile(row.cancelMs, 99))}` : '') +
      ` other ${fmt(row.otherPct, 0)}%` +
      ` cpu ${JSON.stringify(Object.fromEntries(Object.entries(row.cpuPer1k).map(([k, v]) => [k, Number(v.toFixed(3))])))}`,
  );

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const machine = {
    cpus: os.availableParallelism(),
    model: os.cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: `${os.platform()} ${os.release()}`,
    nofile: safe(() => execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim()),
    loadBefore: os.loadavg(),
    date: new Date().toISOString(),
  };
  const paced = await startUpstream('upstream', PACE_MS, TOKENS);
  const fast = await startUpstream('upstream-fast', 0, FAST_TOKENS);
  const gateway = await startGateway(paced.url, fast.url);
  const portkey = await startPortkey();
  const redis = findRedis();
  const watchedBase = [gateway.api, gateway.worker, ...(redis ? [redis] : [])];
  const stop = async () => {
    // SIGTERM, so that --cpu-prof can write its profile.
    const apps = [gateway.api, ...gateway.worker.members!];
    for (const proc of apps) proc.child!.kill('SIGTERM');
    for (const proc of [paced.proc, fast.proc, ...(portkey ? [portkey.proc] : [])]) proc.child!.kill('SIGKILL');
    await Promise.all(apps.map((p) => new Promise((r) => (p.child!.exitCode !== null ? r(0) : p.child!.once('exit', r)))));
  };
  process.on('uncaughtException', (error) => {
    console.error(error);
    void stop().finally(() => process.exit(1));
  });

  const modes = ['direct', 'openai', 'sdk', 'socket', ...(portkey ? (['portkey'] as const) : [])] as const;
  // The `openai` SDK row up to C = 100: at C = 1000 its client CPU alone would starve the gateway on 2 cores.
  const modesAt = (concurrency: number) => modes.filter((mode) => mode !== 'sdk' || concurrency <= SDK_MAX_CONCURRENCY);
  /** The load of `mode` against the paced upstream (or `upstreamUrl`). */
  const task = (mode: LoadTask['mode'], concurrency: number, rounds = 1, model = 'bench', upstreamUrl = paced.url): LoadTask => ({
    mode,
    url: mode === 'direct' ? upstreamUrl : mode === 'portkey' ? portkey!.url : gateway.url,
    headers: mode === 'portkey' ? portkeyHeaders(upstreamUrl) : undefined,
    concurrency,
    rounds,
    model,
    markerPrefix: `${mode}-${concurrency}-${Date.now()}`,
  });
  const watchedFor = (mode: LoadTask['mode'], upstream: Proc): Proc[] =>
    mode === 'direct' ? [upstream] : mode === 'portkey' ? [portkey!.proc, upstream] : [...watchedBase, upstream];
  const rows: Row[] = [];

  // Warm-up (discarded): JIT, connection pools, Redis scripts.
  for (const mode of modes) await runLoad(task(mode, 50), 1, []);

  // Background CPU with no load (timers, lock renewals, stalled-job checks): it dominates CPU per token at C = 1.
  await sleep(1000);
  const idleBefore = watchedBase.map((p) => cpuSeconds(p));
  await sleep(IDLE_MS);
  const idle = Object.fromEntries(watchedBase.map((p, i) => [p.name, ((cpuSeconds(p) - idleBefore[i]!) / (IDLE_MS / 1000)) * 100]));

  if (ONLY.has('rows')) {
    for (const concurrency of CONCURRENCY) {
      const rounds = concurrency === 1 ? C1_ROUNDS : 1;
      const procs = concurrency >= 500 ? LOAD_PROCS : 1;
      // C = 1 is one stream at a time: its arrivals are neither a burst nor a spread.
      for (const arrival of concurrency === 1 ? (['burst'] as const) : (['burst', 'spread'] as const)) {
        // Cancel probes ride along with the OpenAI-route load: one extra stream at a time, DELETEd after its first token.
        const cancel: LoadTask = {
          ...task('cancel', 1, CANCEL_PROBES),
          markerPrefix: `cancel-${concurrency}-${arrival}-${Date.now()}`, // the upstream reports closes by marker
          upstreamUrl: paced.url,
          cancelStartMs: concurrency === 1 ? 500 : 300,
          cancelEveryMs: concurrency === 1 ? 1500 : 150,
        };
        for (const mode of modesAt(concurrency)) {
          const run = await runLoad({ ...task(mode, concurrency, rounds), spreadMs: arrival === 'spread' ? SPREAD_MS : 0 }, procs, watchedFor(mode, paced.proc), {
            cancel: mode === 'openai' ? cancel : undefined,
            metricsUrls: mode === 'openai' || mode === 'sdk' || mode === 'socket' ? gateway.metricsUrls : undefined,
          });
          rows.push(toRow(mode, concurrency, run, arrival));
          progress(mode, rows.at(-1)!);
          await sleep(500);
        }
      }
    }
  }

  let fanout: (Row & { subscribedMs: number }) | undefined;
  if (ONLY.has('fanout')) {
    // The generation waits 2 s upstream before its first token, so all sockets subscribe before it streams.
    const sockets = FANOUT_SOCKETS;
    const fanTask: LoadTask = { ...task('fanout', sockets), jobId: '' };
    const loads = await Promise.all(
      Array.from({ length: LOAD_PROCS }, (_, i) => forkLoad({ ...fanTask, concurrency: sockets / LOAD_PROCS, markerPrefix: `fan-p${i}` })),
    );
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: `fanout delay=2000 ${Date.now()}` }] }),
    });
    const { id } = (await created.json()) as { id: string };
    // The job id is only known now: hand it over with the start signal (the load generators read it from the task).
    const watched = [...watchedBase, paced.proc];
    for (const proc of watched) resetPeakRss(proc);
    const cpuBefore = watched.map((p) => cpuSeconds(p));
    const machineBefore = machineBusySeconds();
    const subscribeStart = now();
    for (const { child } of loads) child.send({ type: 'start', jobId: id });
    const replies = await Promise.all(loads.map((l) => l.reply));
    const run: LoadRun = {
      results: replies.flatMap((r) => r.results),
      wallMs: Math.max(...replies.map((r) => r.endedAt)) - Math.min(...replies.map((r) => r.startedAt)),
      cpu: Object.fromEntries(watched.map((p, i) => [p.name, cpuSeconds(p) - cpuBefore[i]!])),
      rss: Object.fromEntries(watched.map((p) => [p.name, peakRssMb(p)])),
      cancels: [],
      otherPct: 0,
    };
    run.cpu.load = replies.reduce((sum, r) => sum + r.cpuSeconds, 0);
    run.otherPct = ((machineBusySeconds() - machineBefore - Object.values(run.cpu).reduce((a, b) => a + b, 0)) / (run.wallMs / 1000)) * 100;
    run.rss.load = Math.max(...replies.map((r) => r.maxRssMb));
    const subscribedAt = Math.max(...run.results.map((r) => r.subscribedAt ?? NaN));
    fanout = { ...toRow('fanout', sockets, run), subscribedMs: subscribedAt - subscribeStart };
    progress('fanout', fanout);
  }

  const throughput: Row[] = [];
  if (ONLY.has('throughput')) {
    for (const mode of modesAt(FAST_STREAMS)) {
      const t = task(mode, FAST_STREAMS, 1, 'bench-fast', fast.url);
      throughput.push(toRow(mode, FAST_STREAMS, await runLoad(t, 1, watchedFor(mode, fast.proc))));
      progress(`max ${mode}`, throughput.at(-1)!);
      await sleep(500);
    }
  }

  const whole = {
    api: peakRssMb(gateway.api),
    worker: peakRssMb(gateway.worker),
    redis: redis ? peakRssMb(redis) : NaN,
  };
  await stop();
  const text = report(machine, rows, fanout, throughput, whole, !!redis, idle);
  writeFileSync(RESULTS, text);
  console.log(text);
  process.exit(0);
}

function safe(f: () => string): string {
  try {
    return f();
  } catch {
    return '?';
  }
}

// ---------------------------------------------------------------- report

const TARGETS = { addedTtftP50: 3, addedTtftP99: 15, addedGapP99: 5, throughput: 50_000, fanoutP99: 20 };
const NAMES: Record<Row['mode'], string> = {
  direct: 'direct (the limit)',
  openai: 'OpenAI SSE route',
  sdk: 'OpenAI SSE route, `openai` SDK client',
  socket: 'Socket.IO',
  portkey: 'Portkey (peer)',
  fanout: 'fan-out',
};
const ARRIVALS: Record<Arrival, string> = { burst: 'burst', spread: `spread over ${SPREAD_MS / 1000} s` };
const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');

function report(
  machine: { cpus: number; model: string; memGiB: number; node: string; kernel: string; nofile: string; loadBefore: number[]; date: string },
  rows: Row[],
  fanout: (Row & { subscribedMs: number }) | undefined,
  throughput: Row[],
  whole: Record<string, number>,
  haveRedis: boolean,
  idle: Record<string, number>,
): string {
  const key = (r: Row) => `${r.concurrency}/${r.arrival}`;
  const direct = new Map(rows.filter((r) => r.mode === 'direct').map((r) => [key(r), r]));
  const hasPortkey = [...rows, ...throughput].some((r) => r.mode === 'portkey');
  const cpu = (r: Row, name: string) => fmt(r.cpuPer1k[name] ?? NaN, 3);
  const L: string[] = [
    '# Benchmark results',
    '',
    `- Machine: ${machine.cpus} CPUs (nproc), ${machine.model}, ${machine.memGiB} GiB; ${machine.kernel}; Node ${machine.node}; open files limit ${machine.nofile}.`,
    `- Date: ${machine.date}. Load average before the run: ${machine.loadBefore.map((n) => n.toFixed(2)).join(' ')}; after: ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')} (other work on the machine shows up here).`,
    `- Fake upstream: ${TOKENS} tokens per stream at ${PACE_MS} ms/token (unpaced run: ${FAST_TOKENS} tokens per stream, bursts of 64). One api and ${WORKERS} worker process${WORKERS === 1 ? '' : 'es'} (as \`npm start\` runs them: one per core; WORKER_CONCURRENCY=2000 each; their CPU and RSS are added up as "worker"), one Redis, the upstream and the load generators are separate processes sharing these ${machine.cpus} cores.`,
    `- C = 1 runs ${C1_ROUNDS} streams one after another; C ≥ 500 and fan-out split the clients over ${LOAD_PROCS} load-generator processes.`,
    `- Gateway settings: WORKER_CONCURRENCY=2000, LOG_LEVEL=warn, limits above the load, everything else at its default (SSE compression is off by default); HTTP clients send \`Accept-Encoding: gzip, deflate\` as the \`openai\` SDK does${
      Object.keys(process.env).some((k) => k.startsWith('TOKENWIRE_')) ? `, plus ${Object.entries(process.env).filter(([k]) => k.startsWith('TOKENWIRE_')).map(([k, v]) => `${k}=${v}`).join(', ')}` : ''
    }. ${
      hasPortkey
        ? 'Peer: @portkey-ai/gateway 1.15.2 (Node, `--headless`, NODE_ENV=production), provider `openai` with the fake upstream as its custom host; one process.'
        : 'The Portkey peer is not run (node_modules/@portkey-ai/gateway is missing: run `npm ci`).'
    }`,
    `- Arrivals at C > 1: "burst" opens all C streams in the same instant; "${ARRIVALS.spread}" opens them evenly over one stream's duration, as independent clients arrive, so about C streams are in flight once it is under way.`,
    '',
    'Definitions. Tokens are counted by content: every `<epoch ms>|` the upstream wrote that reaches the client is one token, however the gateway grouped tokens into events. TTFT: request sent → first token at the client. Inter-token gap: arrival of a token − arrival of the previous one at the client. ' +
      "Per-token latency: arrival at the client − the time the upstream wrote that token (carried in the token's text). " +
      '"Added" = the same percentile through Tokenwire − straight at the upstream, at the same C. ' +
      'CPU s / 1k tokens: CPU seconds the process used during the row ÷ thousands of tokens delivered. Peak RSS: VmHWM of the process during the row (reset before each row).',
    '',
    '## Streams at a fixed pace',
    '',
    '| path | C | arrivals | streams (failed) | TTFT p50 / p99 ms | added TTFT p50 / p99 ms | gap p50 / p99 ms | added gap p99 ms | per-token latency p50 / p99 ms | added latency p99 ms | tokens/s |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const base = direct.get(key(row))!;
    const isDirect = row.mode === 'direct';
    L.push(
      `| ${NAMES[row.mode]} | ${row.concurrency} | ${row.concurrency === 1 ? '—' : ARRIVALS[row.arrival]} | ${row.streams} (${row.failed}) | ${fmt(row.ttftP50)} / ${fmt(row.ttftP99)} | ` +
        `${isDirect ? '—' : `${fmt(row.ttftP50 - base.ttftP50)} / ${fmt(row.ttftP99 - base.ttftP99)}`} | ${fmt(row.gapP50)} / ${fmt(row.gapP99)} | ` +
        `${isDirect ? '—' : fmt(row.gapP99 - base.gapP99)} | ${fmt(row.latencyP50, 2)} / ${fmt(row.latencyP99, 2)} | ${isDirect ? '—' : fmt(row.latencyP99 - base.latencyP99)} | ${Math.round(row.tokensPerSecond)} |`,
    );
  }
  L.push(
    '',
    '## CPU and memory per row',
    '',
    `CPU seconds per 1,000 delivered tokens and peak RSS (MB), per process. "Other processes": CPU that everything else on the machine (other people's work, the kernel, the orchestrator) used during the row, from /proc/stat; high values mean the row was disturbed.${haveRedis ? '' : ' (Redis was not found in /proc: its columns are empty.)'}`,
    '',
    '| path | C | arrivals | api CPU | worker CPU | Redis CPU | gateway total (Tokenwire: api+worker+Redis; peer: Portkey) | upstream CPU | load gen CPU | other processes, % of a core | api RSS | worker RSS | Redis RSS | Portkey RSS | upstream RSS | load gen RSS |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const row of [...rows, ...(fanout ? [fanout] : []), ...throughput]) {
    const up = row.cpuPer1k.upstream ?? row.cpuPer1k['upstream-fast'];
    const upRss = row.rss.upstream ?? row.rss['upstream-fast'];
    const gw = row.mode === 'portkey' ? (row.cpuPer1k.portkey ?? NaN) : (row.cpuPer1k.api ?? NaN) + (row.cpuPer1k.worker ?? NaN) + (row.cpuPer1k.redis ?? 0);
    const label = throughput.includes(row) ? `max throughput, ${NAMES[row.mode]}` : NAMES[row.mode];
    const arrivals = throughput.includes(row) || row.mode === 'fanout' || row.concurrency === 1 ? '—' : ARRIVALS[row.arrival];
    L.push(
      `| ${label} | ${row.concurrency} | ${arrivals} | ${cpu(row, 'api')} | ${cpu(row, 'worker')} | ${cpu(row, 'redis')} | ${fmt(gw, 3)} | ${fmt(up ?? NaN, 3)} | ${cpu(row, 'load')} | ${fmt(row.otherPct, 0)} | ` +
        `${row.rss.api ?? '—'} | ${row.rss.worker ?? '—'} | ${row.rss.redis ?? '—'} | ${row.rss.portkey ?? '—'} | ${upRss ?? '—'} | ${row.rss.load ?? '—'} |`,
    );
  }
  L.push(
    '',
    `Peak RSS over the whole run: api ${whole.api} MB, worker ${whole.worker} MB, Redis ${whole.redis} MB.`,
    '',
    `Background CPU with no load (${IDLE_MS / 1000} s after warm-up): ${Object.entries(idle)
      .map(([k, v]) => `${k} ${fmt(v)} %`)
      .join(', ')} of one core. At C = 1 (about 50 tokens/s) the CPU per 1k tokens is dominated by the cost of waking each process per token (see bench/README.md), not by this background.`,
    '',
  );

  const openaiRows = rows.filter((r) => r.mode === 'openai');
  if (openaiRows.length) {
    L.push(
      '## Cancel latency',
      '',
      `DELETE /v1/generations/:id (sent after the generation's first token reached the client) → the fake upstream sees its socket close. ${CANCEL_PROBES} probes (1,500-token streams) ride along with the OpenAI-route load of each C (one extra stream at a time). A failed probe: the upstream finished or no close was seen.`,
      '',
      '| under load C | arrivals | probes (failed) | p50 ms | p99 ms | max ms |',
      '|---|---|---|---|---|---|',
      ...openaiRows.map(
        (r) =>
          `| ${r.concurrency} | ${r.concurrency === 1 ? '—' : ARRIVALS[r.arrival]} | ${r.cancelMs.length + r.cancelFailed} (${r.cancelFailed}) | ${fmt(percentile(r.cancelMs, 50), 2)} | ${fmt(percentile(r.cancelMs, 99), 2)} | ${fmt(Math.max(...r.cancelMs), 2)} |`,
      ),
      '',
      '## Where TTFT goes (worker histograms, medians for the row)',
      '',
      '| path | C | arrivals | queue wait (enqueue → worker picks up) ms | pick-up → first upstream token ms | enqueue → first token at worker ms |',
      '|---|---|---|---|---|---|',
      ...rows
        .filter((r) => r.stages)
        .map((r) => `| ${NAMES[r.mode]} | ${r.concurrency} | ${r.concurrency === 1 ? '—' : ARRIVALS[r.arrival]} | ${fmt(r.stages!.queueWaitMs)} | ${fmt(r.stages!.upstreamTtftMs)} | ${fmt(r.stages!.totalTtftMs)} |`),
      '',
      'Histogram medians are interpolated within Prometheus buckets, so they are coarse.',
      '',
    );
  }
  if (fanout) {
    L.push(
      '## Fan-out',
      '',
      `One generation (${TOKENS} tokens at ${PACE_MS} ms) with ${fanout.streams} Socket.IO sockets \`subscribe\`d to it (over ${LOAD_PROCS} load-generator processes). ` +
        `All subscriptions were acknowledged ${fmt(fanout.subscribedMs, 0)} ms after the first was sent (the upstream waits 2,000 ms before its first token).`,
      '',
      `- per-token delivery latency (upstream write → socket): p50 ${fmt(fanout.latencyP50, 2)} ms, p99 ${fmt(fanout.latencyP99, 2)} ms;`,
      `- inter-token gap at the sockets: p50 ${fmt(fanout.gapP50)} ms, p99 ${fmt(fanout.gapP99)} ms;`,
      `- ${fanout.tokens} socket-tokens delivered, ${Math.round(fanout.tokensPerSecond)} per second; ${fanout.failed} sockets did not get \`done\`.`,
      '',
    );
  }
  if (throughput.length) {
    L.push(
      '## Maximum throughput',
      '',
      `Unpaced upstream, ${FAST_STREAMS} streams × ${FAST_TOKENS} tokens, one api + ${WORKERS === 1 ? 'one worker' : `${WORKERS} workers`}.`,
      '',
      '| path | tokens/s | TTFT p50 ms | per-token latency p99 ms | gateway CPU s / 1k tokens (api / worker / Redis) | failed |',
      '|---|---|---|---|---|---|',
      ...throughput.map(
        (r) =>
          `| ${NAMES[r.mode]} | ${Math.round(r.tokensPerSecond)} | ${fmt(r.ttftP50)} | ${fmt(r.latencyP99)} | ${cpu(r, 'api')} / ${cpu(r, 'worker')} / ${cpu(r, 'redis')} | ${r.failed} |`,
      ),
      '',
    );
  }

  // Targets (2 cores, 20 ms/token), for Tokenwire; the peer's rows are above for comparison.
  const ours = (r: Row) => r.mode === 'openai' || r.mode === 'sdk' || r.mode === 'socket';
  const where = (r: Row) => `${NAMES[r.mode]}, C = ${r.concurrency}${r.concurrency === 1 ? '' : `, ${ARRIVALS[r.arrival]}`}`;
  L.push('## Targets', '', '| target | measured | verdict |', '|---|---|---|');
  for (const r of rows.filter((x) => ours(x) && x.concurrency === 1000)) {
    const base = direct.get(key(r))!;
    L.push(`| added TTFT p50 ≤ ${TARGETS.addedTtftP50} ms (${where(r)}) | ${fmt(r.ttftP50 - base.ttftP50)} ms | ${verdict(r.ttftP50 - base.ttftP50 <= TARGETS.addedTtftP50)} |`);
    L.push(`| added TTFT p99 ≤ ${TARGETS.addedTtftP99} ms (${where(r)}) | ${fmt(r.ttftP99 - base.ttftP99)} ms | ${verdict(r.ttftP99 - base.ttftP99 <= TARGETS.addedTtftP99)} |`);
  }
  for (const r of rows.filter(ours)) {
    const base = direct.get(key(r))!;
    L.push(`| added inter-token p99 ≤ ${TARGETS.addedGapP99} ms (${where(r)}) | ${fmt(r.gapP99 - base.gapP99)} ms | ${verdict(r.gapP99 - base.gapP99 <= TARGETS.addedGapP99)} |`);
  }
  for (const r of throughput.filter(ours))
    L.push(`| ≥ 50k tokens/s through one api + ${WORKERS === 1 ? 'one worker' : `${WORKERS} workers`} (${NAMES[r.mode]}) | ${Math.round(r.tokensPerSecond)} tokens/s | ${verdict(r.tokensPerSecond >= TARGETS.throughput)} |`);
  if (fanout) L.push(`| fan-out to 1,000 sockets, delivery p99 ≤ ${TARGETS.fanoutP99} ms | ${fmt(fanout.latencyP99)} ms | ${verdict(fanout.latencyP99 <= TARGETS.fanoutP99)} |`);
  L.push('');
  L.push(...peerRatioTargets(rows, direct, key));
  return L.join('\n');
}

/** The performance issue's targets, each a ratio against Portkey (or direct) measured in this same run. */
function peerRatioTargets(rows: Row[], direct: Map<string, Row>, key: (r: Row) => string): string[] {
  const peer = new Map(rows.filter((r) => r.mode === 'portkey').map((r) => [key(r), r]));
  if (!peer.size) return [];
  const gatewayCpu = (r: Row) => (r.mode === 'portkey' ? (r.cpuPer1k.portkey ?? NaN) : (r.cpuPer1k.api ?? NaN) + (r.cpuPer1k.worker ?? NaN) + (r.cpuPer1k.redis ?? 0));
  const at = (r: Row) => `${NAMES[r.mode]}, C = ${r.concurrency}${r.concurrency === 1 ? '' : `, ${ARRIVALS[r.arrival]}`}`;
  const L = ['## Targets against the peer (same run)', '', '| target | measured | verdict |', '|---|---|---|'];
  const ratio = (name: string, r: Row, ours: number, theirs: number, limit: number, { atLeast = false, digits = 0, unit = '' } = {}) => {
    const value = ours / theirs;
    L.push(`| ${name} ${atLeast ? '≥' : '≤'} ${limit}× (${at(r)}) | ${fmt(ours, digits)} / ${fmt(theirs, digits)}${unit} = ${fmt(value, 2)}× | ${verdict(atLeast ? value >= limit : value <= limit)} |`);
  };
  const cpu = { digits: 3, unit: ' s per 1k tokens' };
  for (const r of rows.filter((x) => x.mode === 'openai' || x.mode === 'sdk' || x.mode === 'socket')) {
    const p = peer.get(key(r));
    const d = direct.get(key(r));
    if (!p || !d) continue;
    if (r.concurrency === 1000) ratio('gateway CPU per token vs Portkey', r, gatewayCpu(r), gatewayCpu(p), 0.5, cpu);
    if (r.concurrency === 1) {
      const added = r.ttftP50 - d.ttftP50;
      L.push(`| added TTFT p50 ≤ 5 ms (${at(r)}) | ${fmt(added)} ms | ${verdict(added <= 5)} |`);
      ratio('gateway CPU per token vs Portkey', r, gatewayCpu(r), gatewayCpu(p), 1.5, cpu);
    }
    if (r.concurrency >= 100 && r.arrival === 'burst') ratio('TTFT p50 vs Portkey', r, r.ttftP50, p.ttftP50, 0.6, { unit: ' ms' });
    if (r.concurrency === 1000) {
      ratio('tokens/s vs Portkey', r, r.tokensPerSecond, p.tokensPerSecond, 1.5, { atLeast: true });
      ratio('tokens/s vs direct', r, r.tokensPerSecond, d.tokensPerSecond, 0.6, { atLeast: true });
      if (r.arrival === 'burst' && r.stages) L.push(`| queue wait p50 ≤ 300 ms (${at(r)}) | ${fmt(r.stages.queueWaitMs)} ms | ${verdict(r.stages.queueWaitMs <= 300)} |`);
    }
  }
  L.push('');
  return L;
}



void main();
