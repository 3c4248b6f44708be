/**
 * Redis memory per token and per generation: `npm run bench:redis-memory` (a private Redis).
 *
 * Runs the api and a worker in this process against the demo provider (no network, no pacing),
 * with coalescing off so that one token is one event (a paced upstream's usual case), and for
 * 100- and 1,000-token replies to a prompt of PROMPT_CHARS characters measures, once every
 * generation has ended and its BullMQ job has completed:
 * - `MEMORY USAGE … SAMPLES 0` of each key of one generation (event log, meta hash, terminal
 *   marker, the completed BullMQ job hash),
 * - `INFO memory` used_memory before and after GENERATIONS generations, divided by their number
 *   (everything: the keys above plus sorted-set entries, BullMQ bookkeeping, allocator overhead).
 * Per token is the difference between the two lengths over the 900 extra tokens.
 *
 * Knobs (env): REDIS_URL (required; scripts/with-redis.mjs starts one), BENCH_GENERATIONS (default 50),
 * BENCH_PROMPT_CHARS (default 2000).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisKeys } from '@tokenwire/contracts';
import { createApi } from '@tokenwire/api';
import { createWorker } from '@tokenwire/worker';
import type { TokenwireConfigInput } from '@tokenwire/core';

const LENGTHS = [100, 1000];
const GENERATIONS = Number(process.env.BENCH_GENERATIONS ?? 50);
const PROMPT_CHARS = Number(process.env.BENCH_PROMPT_CHARS ?? 2000);
const PARALLEL = 10;

interface Row {
  tokens: number;
  events: number;
  keys: Record<string, number>;
  perGenerationUsed: number;
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function memoryUsage(redis: Redis, key: string): Promise<number> {
  return ((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number | null) ?? 0;
}

/** Creates a generation and waits for its status to end (the terminal event is written first). */
async function generate(url: string, model: string, prompt: string): Promise<string> {
  const created = await fetch(`${url}/v1/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }] }),
  });
  if (created.status !== 202) throw new Error(`POST /v1/generations: ${created.status} ${await created.text()}`);
  const { id } = (await created.json()) as { id: string };
  for (;;) {
    const view = (await (await fetch(`${url}/v1/generations/${id}`)).json()) as { status: string };
    if (view.status === 'done') return id;
    if (view.status === 'error' || view.status === 'cancelled') throw new Error(`generation ${id} ended ${view.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until BullMQ has no job waiting or running (a job completes just after its terminal event). */
async function queueIdle(redis: Redis, bull: string): Promise<void> {
  for (;;) {
    const [active, waiting, prioritized] = await Promise.all([redis.llen(`${bull}:generations:active`), redis.llen(`${bull}:generations:wait`), redis.zcard(`${bull}:generations:prioritized`)]);
    if (active + waiting + prioritized === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) throw new Error('REDIS_URL is not set: run through scripts/with-redis.mjs');
  const prefix = `memory-${randomUUID().slice(0, 8)}`;
  const config: TokenwireConfigInput = {
    redis: { url: redisUrl, prefix },
    api: { host: '127.0.0.1', port: 0, metricsPort: 0 },
    worker: { metricsPort: 0, coalesce: 'off', concurrency: PARALLEL },
    ollama: { discover: [] },
    log: { level: 'silent' },
    limits: { maxConcurrent: 1000, requestsPerMinute: 100_000, tokensPerMinute: 100_000_000 },
    models: LENGTHS.map((tokens) => ({ name: `demo-${tokens}`, provider: 'demo', options: { tokenDelayMs: 0, tokens } })),
  };
  const worker = await createWorker(config, {});
  const api = await createApi(config, {});
  const redis = new Redis(redisUrl);
  const keys = redisKeys(prefix);
  const bull = keys.bullPrefix();
  const prompt = 'Tell me about streaming tokens through Redis. '.repeat(Math.ceil(PROMPT_CHARS / 46)).slice(0, PROMPT_CHARS);
  const rows: Row[] = [];
  try {
    await generate(api.url, 'demo-100', prompt); // warm-up: scripts loaded, first keys created
    for (const tokens of LENGTHS) {
      const model = `demo-${tokens}`;
      await queueIdle(redis, bull);
      const before = await usedMemory(redis);
      const ids: string[] = [];
      for (let i = 0; i < GENERATIONS; i += PARALLEL) {
        ids.push(...(await Promise.all(Array.from({ length: Math.min(PARALLEL, GENERATIONS - i) }, () => generate(api.url, model, prompt)))));
      }
      await queueIdle(redis, bull);
      const after = await usedMemory(redis);
      const id = ids.at(-1)!;
      const sample: Record<string, number> = {
        'event log (stream)': await memoryUsage(redis, keys.eventLog(id)),
        'meta (hash)': await memoryUsage(redis, keys.meta(id)),
        'terminal marker': await memoryUsage(redis, keys.terminalMarker(id)),
        'BullMQ job (hash)': await memoryUsage(redis, `${bull}:generations:${id}`),
      };
      rows.push({ tokens, events: await redis.xlen(keys.eventLog(id)), keys: sample, perGenerationUsed: (after - before) / GENERATIONS });
    }
  } finally {
    redis.disconnect();
    await api.close();
    await worker.close();
  }
  print(rows);
}

function print(rows: Row[]): void {
  const kb = (bytes: number) => (bytes / 1024).toFixed(1);
  const names = Object.keys(rows[0]!.keys);
  console.log(`Redis memory after ${GENERATIONS} generations of each length, prompt ${PROMPT_CHARS} characters, coalescing off (1 event per token)\n`);
  console.log(`| | ${rows.map((r) => `${r.tokens} tokens`).join(' | ')} |`);
  console.log(`|---|${rows.map(() => '---:').join('|')}|`);
  console.log(`| events in the log | ${rows.map((r) => r.events).join(' | ')} |`);
  for (const name of names) console.log(`| ${name}, KB | ${rows.map((r) => kb(r.keys[name]!)).join(' | ')} |`);
  console.log(`| sum of those keys, KB | ${rows.map((r) => kb(Object.values(r.keys).reduce((a, b) => a + b, 0))).join(' | ')} |`);
  console.log(`| used_memory per generation (INFO), KB | ${rows.map((r) => kb(r.perGenerationUsed)).join(' | ')} |`);
  const [short, long] = rows;
  if (short && long) {
    const perToken = (long.keys['event log (stream)']! - short.keys['event log (stream)']!) / (long.tokens - short.tokens);
    const perTokenUsed = (long.perGenerationUsed - short.perGenerationUsed) / (long.tokens - short.tokens);
    console.log(`\nper token: ${perToken.toFixed(1)} B (event log), ${perTokenUsed.toFixed(1)} B (used_memory)`);
    console.log(`fixed per generation: ${((short.perGenerationUsed - perTokenUsed * short.tokens) / 1024).toFixed(1)} KB (used_memory, less the tokens)`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
