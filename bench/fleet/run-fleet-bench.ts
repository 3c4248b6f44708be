/**
 * `npm run bench:fleet`: one model served by several fake replicas with a prefix cache
 * (fake-replica.ts), a multi-tenant chat workload whose conversations grow turn by turn
 * over a per-tenant system prompt, routed by round robin, least outstanding and prefix
 * affinity, through the real api and 1 or 4 real worker processes; then a replica is
 * killed mid-run. Writes bench/FLEET-RESULTS.md (the table is also in bench/README.md).
 *
 * Knobs (env): BENCH_FLEET_REPLICAS (8), BENCH_FLEET_CONVERSATIONS (48), BENCH_FLEET_TURNS (8),
 * BENCH_FLEET_USERS (concurrent conversations, 24), BENCH_FLEET_WORKERS (1,4), BENCH_FLEET_LOAD_MARGIN (2),
 * BENCH_SLOTS / BENCH_CACHE_BLOCKS / BENCH_REPLY_TOKENS (each replica, see fake-replica.ts).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';

const root = path.resolve(__dirname, '..', '..', '..');
const REPLICAS = Number(process.env.BENCH_FLEET_REPLICAS ?? 8);
const CONVERSATIONS = Number(process.env.BENCH_FLEET_CONVERSATIONS ?? 48);
const TURNS = Number(process.env.BENCH_FLEET_TURNS ?? 8);
const USERS = Number(process.env.BENCH_FLEET_USERS ?? 24);
const WORKER_COUNTS = (process.env.BENCH_FLEET_WORKERS ?? '1,4').split(',').map(Number);
const TENANTS = 4;
const STRATEGIES = ['round-robin', 'least-outstanding', 'prefix-affinity'] as const;
type Strategy = (typeof STRATEGIES)[number];

// ---------------------------------------------------------------- processes

const children = new Set<ChildProcess>();

interface Replica {
  child: ChildProcess;
  url: string;
}

async function startReplica(): Promise<Replica> {
  const child = fork(path.join(__dirname, 'fake-replica.js'), { env: process.env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.add(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`replica exited with ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

interface App {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  ready: Promise<Record<string, unknown>>;
}

function startApp(entry: string, env: NodeJS.ProcessEnv, readyMsg: string): App {
  const child = spawn(process.execPath, [path.join(root, entry)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const logs: Array<Record<string, unknown>> = [];
  let rest = '';
  let resolveReady!: (line: Record<string, unknown>) => void;
  const ready = new Promise<Record<string, unknown>>((resolve) => (resolveReady = resolve));
  child.stdout!.on('data', (data: Buffer) => {
    const lines = (rest + data.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const text of lines) {
      try {
        const line = JSON.parse(text) as Record<string, unknown>;
        if (line.msg === readyMsg) resolveReady(line);
        if (Number(line.level) >= 40) logs.push(line);
      } catch {
        // not JSON
      }
    }
  });
  return { child, logs, ready };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// ---------------------------------------------------------------- workload

/** Deterministic filler text, so every run asks the same questions. */
function words(seed: number, count: number): string {
  const vocabulary = ['latency', 'cache', 'replica', 'order', 'refund', 'parcel', 'invoice', 'warranty', 'delivery', 'account', 'discount', 'size', 'colour', 'return', 'address', 'payment'];
  let x = seed * 2654435761;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(vocabulary[x % vocabulary.length]!);
  }
  return out.join(' ');
}

function systemPrompt(run: string, tenant: number): string {
  return `[${run}] You are the assistant of shop ${tenant}. ${words(1000 + tenant, 150)}`;
}

interface TurnResult {
  ttftMs: number;
  outcome: 'done' | 'error' | 'lost';
  text: string;
}

async function streamTurn(apiUrl: string, model: string, messages: Array<{ role: string; content: string }>): Promise<TurnResult> {
  const sentAt = performance.now();
  let ttftMs = NaN;
  let text = '';
  try {
    const response = await fetch(`${apiUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages, stream: true }),
      signal: AbortSignal.timeout(120_000),
    });
    if (response.status !== 200) return { ttftMs, outcome: 'error', text: await response.text() };
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const bytes of response.body as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(bytes, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const raw = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (raw.startsWith(':')) continue; // keep-alive comment
        const frame = raw.replace(/^data: /, '');
        if (frame === '[DONE]') return { ttftMs, outcome: 'done', text };
        const chunk = JSON.parse(frame) as { error?: unknown; choices?: Array<{ delta?: { content?: string } }> };
        if (chunk.error) return { ttftMs, outcome: 'error', text };
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          if (Number.isNaN(ttftMs)) ttftMs = performance.now() - sentAt;
          text += delta;
        }
      }
    }
    return { ttftMs, outcome: 'lost', text: 'the stream ended without [DONE] or an error' };
  } catch (error) {
    return { ttftMs, outcome: 'lost', text: (error as Error).message };
  }
}

interface RunResult {
  ttfts: number[];
  outcomes: Record<TurnResult['outcome'], number>;
  seconds: number;
  /** The best hit rate any router could reach on this run (see `ceilingBlocks`). */
  ceiling: number;
}

/** Blocks of a prompt as the fake replica counts them (fake-replica.ts: `role:content\n`, 256-character blocks, whole blocks only). */
function promptBlocks(messages: Array<{ role: string; content: string }>): number {
  return Math.floor(messages.reduce((length, m) => length + m.role.length + m.content.length + 2, 0) / 256);
}

/** USERS concurrent users each run conversations turn by turn until CONVERSATIONS are done. */
async function runWorkload(apiUrl: string, model: string, run: string, onProgress?: (done: number) => void): Promise<RunResult> {
  const ttfts: number[] = [];
  const outcomes = { done: 0, error: 0, lost: 0 };
  let next = 0;
  let finished = 0;
  // The ceiling: every turn finds its whole previous prompt cached and a first turn its system prompt
  // (each conversation on one replica, no eviction, every replica already holding every system prompt).
  let blocks = 0;
  let reachable = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: USERS }, async () => {
      for (let c = next++; c < CONVERSATIONS; c = next++) {
        const messages = [{ role: 'system', content: systemPrompt(run, c % TENANTS) }];
        let previousBlocks = promptBlocks(messages);
        for (let turn = 0; turn < TURNS; turn++) {
          messages.push({ role: 'user', content: `Conversation ${run}-${c}, question ${turn}: ${words(c * 100 + turn, 110)}` });
          const promptBlockCount = promptBlocks(messages);
          blocks += promptBlockCount;
          reachable += previousBlocks;
          previousBlocks = promptBlockCount;
          const result = await streamTurn(apiUrl, model, messages);
          outcomes[result.outcome]++;
          if (result.outcome !== 'done') console.error(`turn ${turn} of conversation ${c}: ${result.outcome}: ${result.text.slice(0, 300)}`);
          if (!Number.isNaN(result.ttftMs)) ttfts.push(result.ttftMs);
          onProgress?.(++finished);
          messages.push({ role: 'assistant', content: result.text });
        }
      }
    }),
  );
  return { ttfts, outcomes, seconds: (performance.now() - started) / 1000, ceiling: reachable / blocks };
}

// ---------------------------------------------------------------- measurement

interface ReplicaStats {
  ttfts: number[];
  requests: number;
  blocks: number;
  hitBlocks: number;
  meanAtReplica: number;
}

async function replicaStats(replicas: Replica[]): Promise<Array<ReplicaStats | undefined>> {
  return Promise.all(replicas.map(async (r) => (await fetch(`${r.url}/stats`).then((res) => res.json() as Promise<ReplicaStats>).catch(() => undefined))));
}

/** The model's in-flight count over all replicas, as /readyz reads it from Redis. */
async function inFlightInRedis(apiUrl: string, model: string): Promise<number> {
  const body = (await fetch(`${apiUrl}/readyz`).then((res) => res.json())) as { deployments?: Record<string, Record<string, { inFlight: number }>> };
  return Object.values(body.deployments?.[model] ?? {}).reduce((sum, d) => sum + d.inFlight, 0);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function workerCounter(metricsUrls: string[], name: string, match: (labels: string) => boolean): Promise<number> {
  let total = 0;
  for (const url of metricsUrls) {
    const text = await fetch(url).then((res) => res.text()).catch(() => '');
    for (const line of text.split('\n')) {
      const m = line.match(new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+]+)$`));
      if (m && match(m[1]!)) total += Number(m[2]);
    }
  }
  return total;
}

interface Row {
  strategy: Strategy;
  workers: number;
  hitRate: number;
  ceiling: number;
  ttftP50: number;
  ttftP99: number;
  replicaTtftP50: number;
  replicaTtftP99: number;
  imbalance: number;
  perReplica: number[];
  seconds: number;
  outcomes: RunResult['outcomes'];
  inFlightLeft: number;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const replicas = await Promise.all(Array.from({ length: REPLICAS }, () => startReplica()));
  const deployments = replicas.map((r, i) => ({ id: `r${i}`, options: { baseUrl: `${r.url}/v1` } }));
  const model = (strategy: Strategy) => ({
    name: `fleet-${strategy}`,
    provider: 'openai-compatible',
    deployments,
    // Chunks of 256 characters and a minimum match of 8 (2 KB): above the 1 KB system prompt.
    routing: { strategy, chunkChars: 256, minMatchChunks: 8, loadMargin: Number(process.env.BENCH_FLEET_LOAD_MARGIN ?? 2), maxAttempts: 3 },
    health: { probePath: '/health', probeIntervalMs: 1_000, ejectAfterFailures: 2, ejectMs: 10_000 },
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tokenwire-fleet-bench-'));
  const config = path.join(dir, 'tokenwire.yaml');
  writeFileSync(config, toYaml({ models: STRATEGIES.map(model), upstream: { stallTimeoutMs: 30_000 } }));
  const apiPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    REDIS_URL: process.env.REDIS_URL,
    TOKENWIRE_CONFIG: config,
    TOKENWIRE_REDIS_PREFIX: `fleet-bench-${process.pid}`,
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    PORT: String(apiPort),
    WORKER_METRICS_PORT: '0',
    WORKER_CONCURRENCY: '200',
    OLLAMA_DISCOVER_URLS: 'off',
    TOKENWIRE_SSE_COMPRESSION: 'false',
    TOKENWIRE_REQUESTS_PER_MINUTE: '1000000',
    TOKENWIRE_TOKENS_PER_MINUTE: '1000000000',
    TOKENWIRE_MAX_CONCURRENT: '100000',
  };
  const api = startApp('apps/api/dist/main.js', env, 'api listening');
  await api.ready;
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const workers: App[] = [];
  const metricsUrls: string[] = [];
  const rows: Row[] = [];
  const startedAt = new Date().toISOString();
  const load = os.loadavg()[0]!.toFixed(1);
  let runIndex = 0;
  try {
    for (const count of WORKER_COUNTS) {
      while (workers.length < count) {
        const worker = startApp('apps/worker/dist/main.js', env, 'worker started');
        workers.push(worker);
        metricsUrls.push(String((await worker.ready).metricsUrl).replace('0.0.0.0', '127.0.0.1'));
      }
      for (const strategy of STRATEGIES) {
        await Promise.all(replicas.map((r) => fetch(`${r.url}/reset`, { method: 'POST' })));
        const run = `run${runIndex++}`;
        const result = await runWorkload(apiUrl, `fleet-${strategy}`, run);
        const stats = (await replicaStats(replicas)) as ReplicaStats[];
        // Every pick's in-flight slot must be given back once the run is over (all workers share the count).
        const inFlightLeft = await inFlightInRedis(apiUrl, `fleet-${strategy}`);
        const blocks = stats.reduce((sum, s) => sum + s.blocks, 0);
        const hits = stats.reduce((sum, s) => sum + s.hitBlocks, 0);
        const means = stats.map((s) => s.meanAtReplica);
        const row: Row = {
          strategy,
          workers: count,
          hitRate: hits / blocks,
          ceiling: result.ceiling,
          ttftP50: percentile(result.ttfts, 50),
          ttftP99: percentile(result.ttfts, 99),
          replicaTtftP50: percentile(stats.flatMap((s) => s.ttfts), 50),
          replicaTtftP99: percentile(stats.flatMap((s) => s.ttfts), 99),
          imbalance: Math.max(...means) / Math.max(1e-9, Math.min(...means)),
          perReplica: stats.map((s) => s.requests),
          seconds: result.seconds,
          outcomes: result.outcomes,
          inFlightLeft,
        };
        rows.push(row);
        console.log(JSON.stringify({ ...row, at: new Date().toISOString() }));
      }
    }

    // A replica killed mid-run: prefix affinity, all the workers.
    await Promise.all(replicas.map((r) => fetch(`${r.url}/reset`, { method: 'POST' })));
    const victim = replicas.length - 1;
    const failedBefore = await workerCounter(metricsUrls, 'tokenwire_deployment_requests_total', (l) => l.includes(`deployment="r${victim}"`) && l.includes('outcome="failed"'));
    const total = CONVERSATIONS * TURNS;
    let killed = false;
    const kill = await runWorkload(apiUrl, 'fleet-prefix-affinity', `run${runIndex++}`, (done) => {
      if (!killed && done >= total * 0.4) {
        killed = true;
        replicas[victim]!.child.kill('SIGKILL');
      }
    });
    const failedAtVictim =
      (await workerCounter(metricsUrls, 'tokenwire_deployment_requests_total', (l) => l.includes(`deployment="r${victim}"`) && l.includes('outcome="failed"'))) - failedBefore;
    const killRow = { workers: workers.length, accepted: total, ...kill.outcomes, failedAtKilledReplica: failedAtVictim, retriedElsewhere: failedAtVictim - kill.outcomes.error, ttftP99: percentile(kill.ttfts, 99) };
    console.log(JSON.stringify(killRow));
    writeResults(rows, killRow, startedAt, load);
  } finally {
    // Before with-redis stops Redis: a worker waiting for Redis would not exit on SIGTERM.
    await Promise.all([...workers.map((w) => stop(w.child)), stop(api.child), ...replicas.map((r) => stop(r.child))]);
  }
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function writeResults(rows: Row[], kill: Record<string, number>, startedAt: string, loadBefore: string): void {
  const ms = (v: number) => `${Math.round(v)} ms`;
  const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
  const rr = (workers: number) => rows.find((r) => r.strategy === 'round-robin' && r.workers === workers)!;
  const lines = [
    `# Fleet bench results`,
    '',
    `Run ${startedAt}, load average ${loadBefore} before, ${os.loadavg()[0]!.toFixed(1)} after; ${REPLICAS} replicas (${process.env.BENCH_SLOTS ?? 4} slots, ${process.env.BENCH_CACHE_BLOCKS ?? 128}-block cache each), ${CONVERSATIONS} conversations × ${TURNS} turns, ${USERS} at once, ${TENANTS} tenants.`,
    '',
    '| strategy | workers | cache hit rate | × round robin | TTFT p50 at client | TTFT p99 at client | ÷ round robin | TTFT p50 at replica | TTFT p99 at replica | ÷ round robin | in-flight max/min | requests per replica | wall time | done / error / lost |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) =>
      [
        r.strategy,
        r.workers,
        pct(r.hitRate),
        `${(r.hitRate / rr(r.workers).hitRate).toFixed(2)}×`,
        ms(r.ttftP50),
        ms(r.ttftP99),
        (r.ttftP99 / rr(r.workers).ttftP99).toFixed(2),
        ms(r.replicaTtftP50),
        ms(r.replicaTtftP99),
        (r.replicaTtftP99 / rr(r.workers).replicaTtftP99).toFixed(2),
        r.imbalance.toFixed(2),
        r.perReplica.join(' / '),
        `${r.seconds.toFixed(1)} s`,
        `${r.outcomes.done} / ${r.outcomes.error} / ${r.outcomes.lost}`,
      ].join(' | ').replace(/^/, '| ').concat(' |'),
    ),
    '',
    `Ceiling: the best hit rate any router could reach on this workload (each conversation on one replica, nothing evicted, every replica ` +
      `already holding every system prompt): ${pct(rows[0]!.ceiling)}, ${[...new Set(rows.map((r) => r.workers))].map((w) => `${(rows[0]!.ceiling / rr(w).hitRate).toFixed(2)}× round robin with ${w} worker${w > 1 ? 's' : ''}`).join(', ')}.`,
    '',
    `In-flight count left in Redis after each run (every pick's slot given back): ${rows.map((r) => r.inFlightLeft).join(', ')}.`,
    '',
    `Replica r${REPLICAS - 1} killed (SIGKILL) after 40 % of a prefix-affinity run with ${kill.workers} workers: ${kill.accepted} requests accepted, ` +
      `${kill.done} done, ${kill.error} ended with one error, ${kill.lost} lost; ${kill.failedAtKilledReplica} attempts failed at the killed replica, ` +
      `${kill.retriedElsewhere} of them before the first token and retried on another replica; TTFT p99 ${ms(kill.ttftP99!)}.`,
    '',
  ];
  writeFileSync(path.join(root, 'bench', 'FLEET-RESULTS.md'), lines.join('\n'));
  console.log(lines.join('\n'));
}

// Interrupted: no child may outlive the bench.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
