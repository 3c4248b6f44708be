/**
 * `node scripts/with-redis.mjs node bench/dist/batch-interference.js`: does a big batch hurt
 * interactive latency? Time to first token of interactive requests, first with no batch, then
 * while a 10,000-item batch runs on the same api and worker.
 */
import { createApi } from '@tokenwire/api';
import { createWorker } from '@tokenwire/worker';

const INTERACTIVE = 40;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function ttft(url: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended before a token');
    text += decoder.decode(value, { stream: true });
    if (text.includes('"content":"') && /"content":"[^"]+"/.test(text)) break;
  }
  const elapsed = performance.now() - started;
  await reader.cancel();
  return elapsed;
}

async function measure(url: string): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < INTERACTIVE; i++) {
    samples.push(await ttft(url));
    await new Promise((r) => setTimeout(r, 50));
  }
  return samples;
}

async function main(): Promise<void> {
  const config = {
    redis: { url: process.env.REDIS_URL!, prefix: `bench-batch-${Date.now()}` },
    api: { host: '127.0.0.1', port: 0, metricsPort: 0 },
    worker: { concurrency: 64, metricsPort: 0 },
    batches: { concurrency: Number(process.env.BATCH_CONCURRENCY ?? 32) },
    ollama: { discover: [] },
    log: { level: 'warn' as const },
    limits: { maxConcurrent: 100_000, requestsPerMinute: 1_000_000 },
    models: [
      { name: 'chat', provider: 'demo', options: { tokenDelayMs: 20, tokens: 5 } },
      { name: 'bulk', provider: 'demo', options: { tokenDelayMs: 0, tokens: 20 } },
    ],
  };
  const worker = await createWorker(config, {});
  const api = await createApi(config, {});
  await measure(api.url); // warm-up
  const idle = await measure(api.url);

  const lines = Array.from({ length: 10_000 }, (_, i) => JSON.stringify({ custom_id: `b${i}`, body: { model: 'bulk', messages: [{ role: 'user', content: `item ${i}` }] } })).join('\n');
  const batchStarted = performance.now();
  const created = await fetch(`${api.url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/jsonl' }, body: lines });
  const { id } = (await created.json()) as { id: string };
  const during = await measure(api.url);
  const progress = (await (await fetch(`${api.url}/v1/batches/${id}`)).json()) as { status: string; request_counts: { completed: number } };
  for (;;) {
    const batch = (await (await fetch(`${api.url}/v1/batches/${id}`)).json()) as { status: string };
    if (batch.status === 'completed') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const batchSeconds = (performance.now() - batchStarted) / 1000;
  const row = (name: string, samples: number[]) => `| ${name} | ${percentile(samples, 50).toFixed(1)} | ${percentile(samples, 99).toFixed(1)} |`;
  console.log(
    [
      `Interactive TTFT (${INTERACTIVE} requests, model paced at 20 ms/token; one api + one worker in one process; batch concurrency ${config.batches.concurrency}):`,
      '| | TTFT p50 (ms) | TTFT p99 (ms) |',
      '|---|---|---|',
      row('no batch', idle),
      row('during a 10,000-item batch', during),
      `The batch was still running when the interactive samples ended (${progress.request_counts.completed} of 10,000 items done); it finished in ${batchSeconds.toFixed(1)} s.`,
    ].join('\n'),
  );
  await api.close();
  await worker.close();
  process.exit(0);
}

void main();
