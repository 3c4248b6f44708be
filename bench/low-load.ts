/**
 * Low load: where a token's CPU goes at C = 1.
 *
 *   npm run bench:low-load   (npm run build && node scripts/with-redis.mjs node bench/dist/low-load.js)
 *
 * Starts the fake upstream (bench/upstream.ts, paced), one api and one worker (apps/*\/dist/main.js, the
 * default configuration apart from limits far above the load), then measures per process (api, worker,
 * Redis, upstream):
 * - idle: CPU (% of a core) and wake-ups per second with no request in flight;
 * - load: sequential single streams for LOW_LOAD_SECONDS, CPU (µs) and wake-ups per delivered token.
 * CPU is read from /proc/<pid>/task/<tid>/schedstat (nanoseconds, every thread); a wake-up is a voluntary
 * context switch (/proc/<pid>/task/<tid>/status `voluntary_ctxt_switches`): the thread slept, on epoll or a
 * futex, and something woke it. "main" counts the event-loop thread alone, "all" adds libuv's pool, V8's
 * platform and GC threads.
 *
 * Knobs (env): LOW_LOAD_SECONDS=10  LOW_LOAD_IDLE_SECONDS=5  LOW_LOAD_PACE_MS=20  LOW_LOAD_TOKENS=100
 * LOW_LOAD_PORTKEY=0 (skip the peer; by default Portkey, when installed, is measured the same way after Tokenwire),
 * LOW_LOAD_THREADS=1 (wake-ups per thread name), LOW_LOAD_CPU_PROF=1 (V8 profiles of api and worker in bench/out/), plus any TOKENWIRE_* or app env var,
 * which the api and worker inherit.
 */
import { fork, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { commandCalls, findRedisPid, freePort, portkeyHeaders, startPortkey, waitFor, writeBenchConfig, type Proc } from './bench-processes';
import { Redis } from 'ioredis';

const root = path.resolve(__dirname, '..', '..');
const SECONDS = Number(process.env.LOW_LOAD_SECONDS ?? 10);
const IDLE_SECONDS = Number(process.env.LOW_LOAD_IDLE_SECONDS ?? 5);
const PACE_MS = Number(process.env.LOW_LOAD_PACE_MS ?? 20);
const TOKENS = Number(process.env.LOW_LOAD_TOKENS ?? 100);

interface Sample {
  /** CPU nanoseconds, every thread. */
  cpuNs: number;
  /** CPU nanoseconds, the main (event loop) thread. */
  mainCpuNs: number;
  /** Voluntary context switches, every thread. */
  wakeups: number;
  /** Voluntary context switches, the main thread. */
  mainWakeups: number;
  /** Clock ticks in user and kernel mode (/proc/<pid>/stat, every thread): the kernel's share of the CPU. */
  userTicks: number;
  systemTicks: number;
}

function sample(proc: Proc): Sample {
  const stat = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const out: Sample = { cpuNs: 0, mainCpuNs: 0, wakeups: 0, mainWakeups: 0, userTicks: Number(stat[11]), systemTicks: Number(stat[12]) };
  for (const tid of readdirSync(`/proc/${proc.pid}/task`)) {
    try {
      const cpuNs = Number(readFileSync(`/proc/${proc.pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const status = readFileSync(`/proc/${proc.pid}/task/${tid}/status`, 'utf8');
      const wakeups = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      out.cpuNs += cpuNs;
      out.wakeups += wakeups;
      if (Number(tid) === proc.pid) {
        out.mainCpuNs = cpuNs;
        out.mainWakeups = wakeups;
      }
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}
function threadWakeups(proc: Proc): Map<string, { name: string; wakeups: number }> {
  const out = new Map<string, { name: string; wakeups: number }>();
  for (const tid of readdirSync(`/proc/${proc.pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${proc.pid}/task/${tid}/status`, 'utf8');
      const name = /Name:\s+(.*)/.exec(status)?.[1] ?? tid;
      out.set(tid, { name, wakeups: Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0) });
    } catch {
      // the thread ended
    }
  }
  return out;
}
const diff = (a: Sample, b: Sample): Sample => ({
  cpuNs: b.cpuNs - a.cpuNs,
  mainCpuNs: b.mainCpuNs - a.mainCpuNs,
  wakeups: b.wakeups - a.wakeups,
  mainWakeups: b.mainWakeups - a.mainWakeups,
  userTicks: b.userTicks - a.userTicks,
  systemTicks: b.systemTicks - a.systemTicks,
});

/** The private Redis as a watched process. */
function findRedis(): Proc | undefined {
  const pid = findRedisPid();
  return pid === undefined ? undefined : { name: 'redis', pid };
}

/** One streamed chat completion; resolves with the number of tokens received. */
async function stream(url: string, marker: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    // What the openai SDK sends (Node's fetch): Accept-Encoding included.
    headers: { 'content-type': 'application/json', authorization: 'Bearer bench', 'accept-encoding': 'gzip, deflate', ...headers },
    body: JSON.stringify({ model: 'bench', stream: true, messages: [{ role: 'user', content: marker }] }),
  });
  if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of res.body) text += decoder.decode(chunk, { stream: true });
  // Every upstream token's text ends in '|' (bench/upstream.ts), so coalesced deltas count in full.
  return text.split('|').length - 1;
}

/** Idle, then sequential single streams through `url`, measured on `procs`; prints one table. */
async function measure(title: string, url: string, headers: Record<string, string>, procs: Proc[], counted: string[]): Promise<void> {
  const f = (n: number, digits = 0) => n.toFixed(digits);
  // Warm up: JIT, connections, scripts loaded.
  for (let i = 0; i < 3; i++) await stream(url, `warm-${title}-${i}`, headers);
  await sleep(2_000);

  const idleStart = procs.map(sample);
  const idleT0 = performance.now();
  await sleep(IDLE_SECONDS * 1_000);
  const idleSeconds = (performance.now() - idleT0) / 1_000;
  const idle = procs.map((p, i) => diff(idleStart[i]!, sample(p)));

  const redisProc = procs.find((p) => p.name === 'redis');
  const stats = redisProc ? new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined;
  const callsStart = stats ? await commandCalls(stats) : new Map<string, number>();
  const threadsStart = procs.map(threadWakeups);
  const loadStart = procs.map(sample);
  const loadT0 = performance.now();
  let tokens = 0;
  let streams = 0;
  while (performance.now() - loadT0 < SECONDS * 1_000) tokens += await stream(url, `low-${title}-${streams++}`, headers);
  const loadSeconds = (performance.now() - loadT0) / 1_000;
  const load = procs.map((p, i) => diff(loadStart[i]!, sample(p)));
  const threadsEnd = procs.map(threadWakeups);
  const callsEnd = stats ? await commandCalls(stats) : new Map<string, number>();
  stats?.disconnect();

  console.log(`\n${title}: ${streams} sequential streams of ${TOKENS} tokens at ${PACE_MS} ms/token, ${tokens} tokens in ${f(loadSeconds, 1)} s; idle ${f(idleSeconds, 1)} s\n`);
  console.log('| process | idle CPU (% core) | idle wake-ups/s (main / all threads) | CPU per token (µs, all / main) | wake-ups per token (main / all) | CPU per wake-up (µs) | kernel share of CPU |');
  console.log('|---|---|---|---|---|---|---|');
  let sumCpu = 0;
  let sumWake = 0;
  procs.forEach((p, i) => {
    const l = load[i]!;
    const d = idle[i]!;
    // CPU and wake-ups above the idle rate: what the tokens cost.
    const netCpuNs = l.cpuNs - (d.cpuNs / idleSeconds) * loadSeconds;
    const netMain = l.mainWakeups - (d.mainWakeups / idleSeconds) * loadSeconds;
    if (counted.includes(p.name)) {
      sumCpu += l.cpuNs;
      sumWake += l.mainWakeups;
    }
    console.log(
      `| ${p.name} | ${f((d.cpuNs / 1e9 / idleSeconds) * 100, 2)} | ${f(d.mainWakeups / idleSeconds, 1)} / ${f(d.wakeups / idleSeconds, 1)} | ${f(l.cpuNs / 1e3 / tokens)} / ${f(l.mainCpuNs / 1e3 / tokens)} (above idle: ${f(netCpuNs / 1e3 / tokens)}) | ${f(l.mainWakeups / tokens, 2)} / ${f(l.wakeups / tokens, 2)} (above idle: ${f(netMain / tokens, 2)}) | ${f(l.cpuNs / 1e3 / Math.max(1, l.wakeups))} | ${f((l.systemTicks / Math.max(1, l.userTicks + l.systemTicks)) * 100)} % |`,
    );
  });
  if (process.env.LOW_LOAD_THREADS) {
    // Which threads woke, besides the event loop: libuv's pool (fs, dns.lookup, zlib, crypto), V8's GC helpers.
    procs.forEach((p, i) => {
      const byName = new Map<string, number>();
      for (const [tid, end] of threadsEnd[i]!) {
        const delta = end.wakeups - (threadsStart[i]!.get(tid)?.wakeups ?? 0);
        if (delta > 0) byName.set(end.name, (byName.get(end.name) ?? 0) + delta);
      }
      console.log(`${p.name} threads, wake-ups per token: ${[...byName].map(([name, n]) => `${name} ${f(n / tokens, 2)}`).join(', ')}`);
    });
  }
  if (stats) {
    const perToken = [...callsEnd]
      .map(([name, calls]) => [name, (calls - (callsStart.get(name) ?? 0)) / tokens] as const)
      .filter(([name, n]) => n >= 0.01 && name !== 'info')
      .sort((a, b) => b[1] - a[1]);
    console.log(`\nRedis commands per token (a script's inner calls count too): ${perToken.map(([name, n]) => `${name} ${f(n, 2)}`).join(', ')}`);
  }
  console.log(`\n${title} (${counted.join(' + ')}): ${f(sumCpu / 1e3 / tokens)} µs CPU and ${f(sumWake / tokens, 2)} main-thread wake-ups per token.`);
}

async function startTokenwire(upstreamUrl: string): Promise<{ api: Proc; worker: Proc; url: string }> {
  const config = writeBenchConfig({ bench: upstreamUrl });
  const port = await freePort();
  const workerMetricsPort = await freePort();
  const env = {
    ...process.env,
    TOKENWIRE_CONFIG: config,
    TOKENWIRE_REDIS_PREFIX: `lowload-${process.pid}-${Date.now()}`,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    API_METRICS_PORT: '0',
    WORKER_METRICS_PORT: String(workerMetricsPort),
  };
  const profile = process.env.LOW_LOAD_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(root, 'bench', 'out')}`] : [];
  const spawnApp = (name: string, entry: string): Proc => {
    const child = spawn(process.execPath, [...profile, path.join(root, entry)], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    return { name, pid: child.pid!, child };
  };
  const api = spawnApp('api', 'apps/api/dist/main.js');
  const worker = spawnApp('worker', 'apps/worker/dist/main.js');
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/readyz`);
  await waitFor(`http://127.0.0.1:${workerMetricsPort}/metrics`);
  return { api, worker, url };
}

async function main(): Promise<void> {
  const redis = findRedis();
  const upstreamChild = fork(path.join(__dirname, 'upstream.js'), { env: { ...process.env, BENCH_PACE_MS: String(PACE_MS), BENCH_TOKENS: String(TOKENS) } });
  const upstreamPort = await new Promise<number>((resolve) => upstreamChild.once('message', (m: { port: number }) => resolve(m.port)));
  const upstream: Proc = { name: 'upstream', pid: upstreamChild.pid!, child: upstreamChild };
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const started: Proc[] = [upstream];
  try {
    const { api, worker, url } = await startTokenwire(upstreamUrl);
    started.push(api, worker);
    await measure('Tokenwire', url, {}, [api, worker, ...(redis ? [redis] : []), upstream], ['api', 'worker', 'redis']);
    // Stopped before the peer runs, so its idle timers do not share the cores with it.
    api.child?.kill('SIGTERM');
    worker.child?.kill('SIGTERM');
    const portkey = process.env.LOW_LOAD_PORTKEY === '0' ? undefined : await startPortkey();
    if (portkey) {
      started.push(portkey.proc);
      await measure('Portkey', portkey.url, portkeyHeaders(upstreamUrl), [portkey.proc, upstream], ['portkey']);
    }
  } finally {
    for (const p of started) p.child?.kill('SIGTERM');
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
