/**
 * A fake inference server (one vLLM-like replica) for the fleet bench, run as its own
 * process (forked; it reports its port over IPC). It models what makes routing matter:
 * - a prefix cache: the prompt is hashed in 256-character blocks, chained; blocks at the
 *   start of the prompt that are in the cache are "hits". The cache holds
 *   `BENCH_CACHE_BLOCKS` blocks and evicts the least recently used;
 * - prefill time: `BASE_TTFT_MS` plus `PREFILL_MS_PER_BLOCK` per block that missed, so a
 *   warm prefix answers fast and a cold one slowly;
 * - limited slots: `BENCH_SLOTS` requests run at once, the rest wait in a FIFO queue
 *   (their wait is part of their TTFT, as in a real server).
 * `GET /stats` reports blocks seen and hit, requests, and the time-averaged number of
 * requests at the replica (running + queued); `POST /reset` empties cache and counters.
 */
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const BLOCK_CHARS = 256;
const SLOTS = Number(process.env.BENCH_SLOTS ?? 4);
const CACHE_BLOCKS = Number(process.env.BENCH_CACHE_BLOCKS ?? 128);
// About 3k prompt tokens/s of prefill (a block is ~64 tokens; a 70B model on one node): a cold
// 30-block prompt takes ~0.6 s, a warm one ~20 ms plus the new turn.
const BASE_TTFT_MS = 20;
const PREFILL_MS_PER_BLOCK = 20;
const TOKENS = Number(process.env.BENCH_REPLY_TOKENS ?? 12);
const TOKEN_MS = 25;

const cache = new Map<string, true>(); // insertion order = recency (re-inserted on use)
let running = 0;
const waiting: Array<() => void> = [];
const stats = { requests: 0, blocks: 0, hitBlocks: 0, atReplicaMs: 0, since: Date.now(), lastChange: Date.now(), peakRunning: 0 };
/** Arrival → first token written, per request (queueing + prefill: the part routing decides). */
let ttfts: number[] = [];

function account(): void {
  const now = Date.now();
  stats.atReplicaMs += (running + waiting.length) * (now - stats.lastChange);
  stats.lastChange = now;
}

async function takeSlot(): Promise<void> {
  account();
  if (running < SLOTS) {
    running++;
  } else {
    await new Promise<void>((resolve) => waiting.push(resolve));
    // the releaser handed its slot over (running unchanged)
  }
  stats.peakRunning = Math.max(stats.peakRunning, running);
}

function releaseSlot(): void {
  account();
  const next = waiting.shift();
  if (next) next();
  else running--;
}

function blockHashes(messages: Array<{ role: string; content: unknown }>): string[] {
  const text = messages.map((m) => `${m.role}:${typeof m.content === 'string' ? m.content : JSON.stringify(m.content)}\n`).join('');
  const hashes: string[] = [];
  let previous = '';
  for (let start = 0; start + BLOCK_CHARS <= text.length; start += BLOCK_CHARS) {
    previous = createHash('sha1').update(previous).update(text.slice(start, start + BLOCK_CHARS)).digest('hex');
    hashes.push(previous);
  }
  return hashes;
}

/** Leading blocks already cached; then every block of the prompt becomes most recently used. */
function prefill(hashes: string[]): number {
  let hits = 0;
  while (hits < hashes.length && cache.has(hashes[hits]!)) hits++;
  for (const hash of hashes) {
    cache.delete(hash);
    cache.set(hash, true);
  }
  while (cache.size > CACHE_BLOCKS) cache.delete(cache.keys().next().value!);
  return hits;
}

const server = http.createServer((req, res) => {
  void (async () => {
    if (req.method === 'GET' && req.url === '/health') return void res.writeHead(200).end();
    if (req.method === 'GET' && req.url === '/stats') {
      account();
      const elapsed = Math.max(1, Date.now() - stats.since);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...stats, meanAtReplica: stats.atReplicaMs / elapsed, ttfts }));
    }
    if (req.method === 'POST' && req.url === '/reset') {
      cache.clear();
      ttfts = [];
      Object.assign(stats, { requests: 0, blocks: 0, hitBlocks: 0, atReplicaMs: 0, since: Date.now(), lastChange: Date.now(), peakRunning: running });
      return void res.writeHead(204).end();
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return void res.writeHead(404).end();
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = JSON.parse(raw) as { model: string; messages: Array<{ role: string; content: unknown }> };
    let closed = false;
    res.on('close', () => (closed = true));
    const arrivedAt = performance.now();
    await takeSlot();
    try {
      stats.requests++;
      const hashes = blockHashes(body.messages);
      const hits = prefill(hashes);
      stats.blocks += hashes.length;
      stats.hitBlocks += hits;
      await sleep(BASE_TTFT_MS + (hashes.length - hits) * PREFILL_MS_PER_BLOCK);
      if (closed) return;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const frame = (delta: Record<string, unknown>, finish: string | null) =>
        `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      for (let i = 0; i < TOKENS && !closed; i++) {
        res.write(frame({ content: `w${i} ` }, null));
        if (i === 0) ttfts.push(performance.now() - arrivedAt);
        await sleep(TOKEN_MS);
      }
      res.end(`${frame({}, 'stop')}data: [DONE]\n\n`);
    } finally {
      releaseSlot();
    }
  })().catch((error: unknown) => {
    if (!res.headersSent) res.writeHead(500);
    res.end(String(error));
  });
});

server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
