/**
 * The cost of a request apart from its tokens: CPU per request of the api, the worker and Redis, and the
 * Redis commands each request costs, for short generations (one token each).
 *
 *   npm run bench:job-start   (npm run build && node scripts/with-redis.mjs node bench/dist/job-start.js)
 *
 * Starts the fake upstream (bench/upstream.ts, one token per stream), one api and one worker (the default
 * configuration apart from limits far above the load), runs one untimed round to warm up, then rounds of
 * JOB_START_REQUESTS non-streamed `POST /v1/chat/completions` in bursts of JOB_START_BURST (each burst
 * waits for its answers). CPU comes from /proc/<pid>/stat (api, worker) and `INFO cpu` (Redis); commands
 * from `INFO commandstats` (Lua scripts count once as EVALSHA and again for each command inside them).
 *
 * Knobs (env): JOB_START_REQUESTS=1000  JOB_START_BURST=200  JOB_START_ROUNDS=3, JOB_START_CPU_PROF=1 (V8 profiles
 * of the api and the worker in bench/out/), plus any TOKENWIRE_* or app env var, which the api and worker inherit.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { commandCalls, freePort, redisCpuSeconds, writeBenchConfig } from './bench-processes';

const root = path.resolve(__dirname, '..', '..');
const REQUESTS = Number(process.env.JOB_START_REQUESTS ?? 1000);
const BURST = Number(process.env.JOB_START_BURST ?? 200);
const ROUNDS = Number(process.env.JOB_START_ROUNDS ?? 3);

/** CPU seconds (user + system, every thread) of a process; /proc counts in clock ticks of 1/100 s. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

async function main(): Promise<void> {
  const upstream = fork(path.join(__dirname, 'upstream.js'), { env: { ...process.env, BENCH_PACE_MS: '20', BENCH_TOKENS: '1' } });
  const upstreamPort = await new Promise<number>((resolve) => upstream.once('message', (m: { port: number }) => resolve(m.port)));
  const config = writeBenchConfig({ bench: `http://127.0.0.1:${upstreamPort}` });
  const port = await freePort();
  const env = {
    ...process.env,
    TOKENWIRE_CONFIG: config,
    TOKENWIRE_REDIS_PREFIX: `bench-job-start-${process.pid}`,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    API_METRICS_PORT: '0',
    WORKER_METRICS_PORT: String(await freePort()),
  };
  // JOB_START_CPU_PROF=1: V8 CPU profiles of the api and the worker in bench/out/ (node bench/top-functions.mjs <file>).
  const profile = process.env.JOB_START_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(root, 'bench', 'out')}`] : [];
  const start = (entry: string): ChildProcess => spawn(process.execPath, [...profile, path.join(root, entry)], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const api = start('apps/api/dist/main.js');
  const worker = start('apps/worker/dist/main.js');
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let waited = 0; !(await fetch(`${url}/readyz`).then((r) => r.ok, () => false)); waited += 100) {
      if (waited > 30_000) throw new Error('the api did not become ready within 30 s');
      await sleep(100);
    }
    const post = async () => {
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hi' }] }),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${response.status}: ${text}`);
    };
    // Warm-up: one untimed round, so the rounds measure JIT-compiled code (a first round costs about 1.5× the next).
    for (let sent = 0; sent < REQUESTS; sent += BURST) await Promise.all(Array.from({ length: Math.min(BURST, REQUESTS - sent) }, post));
    console.log(`${REQUESTS} non-streamed one-token completions in bursts of ${BURST}, ${ROUNDS} rounds (one api, one worker)`);
    console.log('| round | wall ms | api CPU µs / request | worker CPU µs / request | Redis CPU µs / request | Redis commands / request |');
    console.log('|---|---|---|---|---|---|');
    for (let round = 1; round <= ROUNDS; round++) {
      const [calls0, redis0] = await Promise.all([commandCalls(redis), redisCpuSeconds(redis)]);
      const api0 = cpuSeconds(api.pid!);
      const worker0 = cpuSeconds(worker.pid!);
      const startedAt = performance.now();
      for (let sent = 0; sent < REQUESTS; sent += BURST) await Promise.all(Array.from({ length: Math.min(BURST, REQUESTS - sent) }, post));
      const wallMs = performance.now() - startedAt;
      const perRequest = (seconds: number) => Math.round((seconds * 1e6) / REQUESTS);
      const [calls1, redis1] = await Promise.all([commandCalls(redis), redisCpuSeconds(redis)]);
      const commands = [...calls1].map(([name, n]) => [name, (n - (calls0.get(name) ?? 0)) / REQUESTS] as const).filter(([name, n]) => n >= 0.01 && name !== 'info');
      const top = commands
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([name, n]) => `${name} ${n.toFixed(1)}`)
        .join(', ');
      const total = commands.reduce((sum, [, n]) => sum + n, 0);
      console.log(
        `| ${round} | ${Math.round(wallMs)} | ${perRequest(cpuSeconds(api.pid!) - api0)} | ${perRequest(cpuSeconds(worker.pid!) - worker0)} | ${perRequest(redis1 - redis0)} | ${total.toFixed(0)} (${top}) |`,
      );
    }
  } finally {
    redis.disconnect();
    worker.kill('SIGTERM');
    api.kill('SIGTERM');
    upstream.kill();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
