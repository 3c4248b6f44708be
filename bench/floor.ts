/**
 * The design's floor: what the least code that has Tokenwire's shape costs per token, beside Tokenwire and
 * Portkey in the same run.
 *
 *   npm run bench:floor   (npm run build && node scripts/with-redis.mjs node bench/dist/floor.js)
 *
 * Paths, each measured alone (its processes started before its rows, stopped after):
 * - direct: the load generator straight at the fake upstream (bench/upstream.ts), the limit;
 * - Portkey: the peer, one process (as bench/run-bench.ts runs it);
 * - one-hop floor: bench/floor/one-hop-proxy.ts, a proxy that writes each upstream chunk to the client
 *   untouched, in one process: no real one-process proxy costs less per token;
 * - three-hop floor: bench/floor/three-hop-front.ts + three-hop-worker.ts + Redis: a list as the queue, the
 *   worker's upstream read, turn-batched XADD + PUBLISH per event, a subscriber that writes each event as one
 *   SSE frame. No implementation of upstream → worker → Redis → api costs less per token;
 * - Tokenwire: the OpenAI route, one api and FLOOR_WORKERS workers (default 1) with the default configuration.
 * Rows: C = 1 (FLOOR_C1_STREAMS sequential streams) and C = FLOOR_C (default 1000) opened evenly over 2 s, 100
 * tokens at 20 ms each; tokens counted by content, as bench/load.ts does. CPU per token is every thread's CPU
 * time (/proc/<pid>/task/<tid>/schedstat) over the row ÷ tokens delivered. FLOOR_REPEAT (default 2) runs the
 * paths that many times, alternating, so a drift of the machine shows as spread, not as a difference.
 * FLOOR_PATHS=name,... runs only the paths whose names contain one of those words (e.g. `Tokenwire,floor`);
 * FLOOR_CPU_PROF=1 writes V8 CPU profiles of Tokenwire's api and worker to bench/out/ (node bench/top-functions.mjs <file>).
 */
import { fork, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findRedisPid, forkLoad, freePort, portkeyHeaders, startPortkey, waitFor, writeBenchConfig, type Proc } from './bench-processes';
import type { LoadTask, Mode } from './load';

const root = path.resolve(__dirname, '..', '..');
const C1_STREAMS = Number(process.env.FLOOR_C1_STREAMS ?? 10);
const C = Number(process.env.FLOOR_C ?? 1000);
const REPEAT = Number(process.env.FLOOR_REPEAT ?? 2);
const WORKERS = Number(process.env.FLOOR_WORKERS ?? 1);

/** CPU nanoseconds and wake-ups (voluntary context switches: a sleep that something ended) of every thread of `pid` so far. */
function usage(pid: number): { ns: number; wakeups: number } {
  const sum = { ns: 0, wakeups: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      sum.ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      sum.wakeups += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return sum;
}

/** Forks a bench program that sends `{ port }` (or `{ ready }`) once it listens. */
async function forkProgram(name: string, file: string, env: Record<string, string>): Promise<{ proc: Proc; port?: number }> {
  const child = fork(path.join(__dirname, file), { env: { ...process.env, ...env } });
  const message = await new Promise<{ port?: number }>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { proc: { name, pid: child.pid!, child }, port: message.port };
}

interface Path {
  name: string;
  mode: Mode;
  url: string;
  headers?: Record<string, string>;
  /** Processes whose CPU is the gateway's (empty for direct). */
  gateway: Proc[];
  stop: () => void;
}

interface Row {
  path: string;
  c: number;
  streams: number;
  failed: number;
  tokens: number;
  ttftP50: number;
  /** µs per token, by process name. */
  cpu: Record<string, number>;
  /** Wake-ups per token, by process name. */
  wakeups: Record<string, number>;
  gatewayUs: number;
}

const p50 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function runRow(target: Path, c: number, marker: string): Promise<Row> {
  const task = (concurrency: number, i: number): LoadTask => ({
    mode: target.mode,
    url: target.url,
    headers: target.headers,
    concurrency,
    rounds: c === 1 ? C1_STREAMS : 1,
    spreadMs: c === 1 ? 0 : 2000,
    model: 'bench',
    markerPrefix: `${marker}-${i}`,
  });
  const shares = c === 1 ? [1] : [Math.ceil(c / 2), Math.floor(c / 2)];
  const loads = await Promise.all(shares.map((n, i) => forkLoad(task(n, i))));
  const before = target.gateway.map((p) => usage(p.pid));
  for (const { child } of loads) child.send({ type: 'start' });
  const replies = await Promise.all(loads.map((l) => l.reply));
  const after = target.gateway.map((p) => usage(p.pid));
  for (const { child } of loads) child.kill();
  const results = replies.flatMap((r) => r.results);
  const tokens = results.reduce((sum, r) => sum + r.tokens, 0);
  const cpu: Record<string, number> = {};
  const wakeups: Record<string, number> = {};
  target.gateway.forEach((p, i) => {
    cpu[p.name] = (cpu[p.name] ?? 0) + (after[i]!.ns - before[i]!.ns) / 1e3 / tokens;
    wakeups[p.name] = (wakeups[p.name] ?? 0) + (after[i]!.wakeups - before[i]!.wakeups) / tokens;
  });
  return {
    path: target.name,
    c,
    streams: results.length,
    failed: results.filter((r) => !r.ok).length,
    tokens,
    ttftP50: p50(results.map((r) => r.ttftMs)),
    cpu,
    wakeups,
    gatewayUs: Object.values(cpu).reduce((a, b) => a + b, 0),
  };
}

async function main(): Promise<void> {
  const redisPid = findRedisPid();
  if (redisPid === undefined) throw new Error('run under scripts/with-redis.mjs: the private redis-server is measured');
  const redis: Proc = { name: 'redis', pid: redisPid };
  const { proc: upstreamProc, port: upstreamPort } = await forkProgram('upstream', 'upstream.js', { BENCH_PACE_MS: '20', BENCH_TOKENS: '100' });
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const prefix = `floor-${process.pid}`;

  const starters: Array<[string, () => Promise<Path>]> = [
    ['direct', async () => ({ name: 'direct (the limit)', mode: 'direct', url: upstreamUrl, gateway: [], stop: () => undefined })],
    ['Portkey', async () => {
      const { proc, url } = (await startPortkey())!;
      return { name: 'Portkey (peer)', mode: 'portkey', url, headers: portkeyHeaders(upstreamUrl), gateway: [proc], stop: () => proc.child!.kill('SIGKILL') };
    }],
    ['one-hop floor', async () => {
      const { proc, port } = await forkProgram('proxy', 'floor/one-hop-proxy.js', { FLOOR_UPSTREAM: upstreamUrl });
      return { name: 'one-hop floor', mode: 'direct', url: `http://127.0.0.1:${port}`, gateway: [proc], stop: () => proc.child!.kill('SIGKILL') };
    }],
    ['three-hop floor', async () => {
      const env = { FLOOR_UPSTREAM: upstreamUrl, FLOOR_PREFIX: prefix };
      const worker = (await forkProgram('worker', 'floor/three-hop-worker.js', env)).proc;
      const { proc: front, port } = await forkProgram('api', 'floor/three-hop-front.js', env);
      const stop = () => [worker, front].forEach((p) => p.child!.kill('SIGKILL'));
      return { name: 'three-hop floor', mode: 'direct', url: `http://127.0.0.1:${port}`, gateway: [front, worker, redis], stop };
    }],
    ['Tokenwire', async () => {
      const port = await freePort();
      const env = {
        ...process.env,
        TOKENWIRE_CONFIG: writeBenchConfig({ bench: upstreamUrl }),
        TOKENWIRE_REDIS_PREFIX: `${prefix}-tw-${Date.now()}`,
        LOG_LEVEL: 'warn',
        HOST: '127.0.0.1',
        PORT: String(port),
        API_METRICS_PORT: '0',
        WORKER_METRICS_PORT: '0',
        WORKER_CONCURRENCY: '2000',
      };
      const profile = process.env.FLOOR_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(root, 'bench', 'out')}`] : [];
      const spawnApp = (name: string, entry: string): Proc => {
        const child = spawn(process.execPath, [...profile, path.join(root, entry)], { env, stdio: ['ignore', 'ignore', 'inherit'] });
        return { name, pid: child.pid!, child };
      };
      const api = spawnApp('api', 'apps/api/dist/main.js');
      const workers = Array.from({ length: WORKERS }, () => spawnApp('worker', 'apps/worker/dist/main.js'));
      const url = `http://127.0.0.1:${port}`;
      await waitFor(`${url}/readyz`);
      // The workers are ready once a generation runs through them.
      const probe = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'tokens=1' }] }) });
      if (!probe.ok) throw new Error(`Tokenwire answered ${probe.status}`);
      // SIGTERM: a V8 profile is written on a clean exit.
      const stop = () => [api, ...workers].forEach((p) => p.child!.kill(profile.length ? 'SIGTERM' : 'SIGKILL'));
      return { name: `Tokenwire, OpenAI route (${WORKERS} worker${WORKERS > 1 ? 's' : ''})`, mode: 'openai', url, gateway: [api, ...workers, redis], stop };
    }],
  ];
  const wanted = process.env.FLOOR_PATHS?.split(',');
  const chosen = starters
    .filter(([name]) => name !== 'Portkey' || existsSync(path.join(root, 'node_modules', '@portkey-ai', 'gateway')))
    .filter(([name]) => !wanted || wanted.some((word) => name.includes(word)))
    .map(([, start]) => start);

  const rows: Row[] = [];
  try {
    for (let round = 0; round < REPEAT; round++) {
      for (const [i, start] of chosen.entries()) {
        const target = await start();
        try {
          // Warm-up: JIT, connections, scripts loaded.
          await runRow(target, 1, `warm-${round}-${i}`);
          for (const c of [1, C]) {
            const row = await runRow(target, c, `r${round}-${i}-${c}`);
            rows.push(row);
            console.error(`${row.path}, C = ${c}: ${row.gatewayUs.toFixed(0)} µs per token, TTFT p50 ${row.ttftP50.toFixed(1)} ms, ${row.failed} failed`);
          }
        } finally {
          target.stop();
        }
        await sleep(1_000);
      }
    }
  } finally {
    upstreamProc.child!.kill('SIGKILL');
  }
  print(rows);
}

function print(rows: Row[]): void {
  const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
  const range = (values: number[], digits = 0) => {
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    return f(lo, digits) === f(hi, digits) ? f(lo, digits) : `${f(lo, digits)}–${f(hi, digits)}`;
  };
  const paths = [...new Set(rows.map((r) => r.path))];
  for (const c of [1, C]) {
    const peer = rows.filter((r) => r.c === c && r.path === 'Portkey (peer)').map((r) => r.gatewayUs);
    console.log(`\nC = ${c}${c === 1 ? ` (${C1_STREAMS} sequential streams)` : ' (opened evenly over 2 s)'}, ${REPEAT} runs each; CPU µs per token\n`);
    console.log('| path | streams (failed) | TTFT p50 ms | CPU per token by process (µs) | wake-ups per token by process | gateway CPU per token (µs) | ÷ Portkey (same run) |');
    console.log('|---|---|---|---|---|---|---|');
    for (const name of paths) {
      const mine = rows.filter((r) => r.c === c && r.path === name);
      if (mine.length === 0) continue;
      const procs = Object.keys(mine[0]!.cpu);
      const byProc = procs.map((p) => `${p} ${range(mine.map((r) => r.cpu[p]!))}`).join(', ');
      const wakes = procs.map((p) => `${p} ${range(mine.map((r) => r.wakeups[p]!), 2)}`).join(', ');
      const ratios = mine.map((r, i) => r.gatewayUs / (peer[i] ?? NaN));
      console.log(
        `| ${name} | ${mine.map((r) => `${r.streams} (${r.failed})`).join(', ')} | ${range(mine.map((r) => r.ttftP50), 1)} | ${byProc || '—'} | ${wakes || '—'} | ${procs.length ? range(mine.map((r) => r.gatewayUs)) : '—'} | ${procs.length ? range(ratios, 2) : '—'} |`,
      );
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
