/**
 * The worker's per-token provider chain alone, no Redis, no queue: CPU per token of this process.
 * A fake OpenAI-compatible SSE upstream runs in a child process (so its CPU is not counted) and
 * the parent consumes it through the real chain: the registry's OpenAICompatibleProvider wrapped
 * by withStallTimeout, and the same under UpstreamRouterService (breaker, retries; no fleet, no cap).
 *
 *   npm run bench:provider-chain   (npm run build && node bench/dist/provider-chain.js)
 *
 * Env: CHAIN_TOKENS (unpaced tokens per stream, 200000), CHAIN_STREAMS (paced concurrent streams,
 * 500), CHAIN_PACED_TOKENS (64), CHAIN_PACE_MS (20), CHAIN_REPS (3).
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProviderRegistry, withStallTimeout, type ProviderChunk, type ProviderRequest } from '@tokenwire/providers';
import type { Logger } from '@tokenwire/core';
import { UpstreamRouterService } from '@tokenwire/worker/dist/upstream/upstream-router.service';

const UNPACED_TOKENS = Number(process.env.CHAIN_TOKENS ?? 200_000);
const STREAMS = Number(process.env.CHAIN_STREAMS ?? 500);
const PACED_TOKENS = Number(process.env.CHAIN_PACED_TOKENS ?? 64);
const PACE_MS = Number(process.env.CHAIN_PACE_MS ?? 20);
const REPS = Number(process.env.CHAIN_REPS ?? 3);

const frame = (content: string) =>
  `data: {"id":"b","object":"chat.completion.chunk","created":0,"model":"bench","choices":[{"index":0,"delta":{"content":"${content}"},"finish_reason":null}]}\n\n`;
const LAST = 'data: {"id":"b","object":"chat.completion.chunk","created":0,"model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';

/** Child: `POST /chat/completions`; the user message is `<tokens> <paceMs>`; unpaced streams write 64 frames per turn. */
function serveUpstream(): void {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const body = JSON.parse(raw) as { messages: Array<{ content: string }> };
      const [tokens, paceMs] = (body.messages.at(-1)?.content ?? '0 0').split(' ').map(Number) as [number, number];
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let sent = 0;
      const tick = (): void => {
        if (res.destroyed) return;
        const burst = paceMs > 0 ? 1 : 64;
        for (let i = 0; i < burst && sent < tokens; i++, sent++) res.write(frame('tok'));
        if (sent < tokens) {
          if (paceMs > 0) setTimeout(tick, paceMs);
          else setImmediate(tick);
        } else res.end(LAST);
      };
      tick();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as AddressInfo).port));
}

const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Logger;

type Chain = (request: Omit<ProviderRequest, 'model'>, signal: AbortSignal) => AsyncIterable<ProviderChunk>;

function chains(baseUrl: string): Record<string, Chain> {
  const registry = new ProviderRegistry([{ name: 'bench', provider: 'openai-compatible', options: { baseUrl } }]);
  const resolved = registry.resolve('bench')!;
  const upstream = { stallTimeoutMs: 30_000, firstTokenTimeoutMs: undefined, maxAttempts: 3, retryBaseDelayMs: 100, retryMaxDelayMs: 1000, breakerFailureThreshold: 5, breakerResetMs: 30_000 };
  const wrapped = withStallTimeout(resolved.provider, { idleMs: upstream.stallTimeoutMs });
  const router = new UpstreamRouterService(
    registry,
    { models: [{ name: 'bench', fallbacks: [] }], upstream } as never,
    { defineCommand: () => undefined } as never, // Redis: only used for capped models and breaker state changes
    {} as never,
    silent,
    { upstreamErrors: { inc: () => undefined } } as never,
    { serves: () => false } as never,
  );
  return {
    'provider + stall wrapper': (request, signal) => wrapped.stream({ ...request, model: 'bench' }, { signal, log: silent }),
    'router (+ provider + stall wrapper)': (request, signal) => router.stream('bench', request, signal, silent, 'holder'),
  };
}

async function consume(chain: Chain, tokens: number, paceMs: number): Promise<number> {
  let count = 0;
  const request = { messages: [{ role: 'user' as const, content: `${tokens} ${paceMs}` }], params: {} };
  for await (const part of chain(request as never, new AbortController().signal)) if (part.type === 'text-delta') count++;
  if (count !== tokens) throw new Error(`expected ${tokens} tokens, got ${count}`);
  return count;
}

async function measure(run: () => Promise<number>): Promise<{ usPerToken: number; tokensPerSecond: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const tokens = await run();
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - started) / 1000;
  return { usPerToken: (used.user + used.system) / tokens, tokensPerSecond: tokens / seconds };
}

async function main(): Promise<void> {
  const child: ChildProcess = fork(__filename, ['--upstream'], { stdio: 'inherit' });
  const [port] = (await once(child, 'message')) as [number];
  const all = chains(`http://127.0.0.1:${port}/v1`);
  // Warm up both chains (JIT, keep-alive sockets).
  for (const chain of Object.values(all)) {
    await consume(chain, 5_000, 0);
    await Promise.all(Array.from({ length: 50 }, () => consume(chain, 8, 1)));
  }
  console.log(`node ${process.version}; unpaced: 1 stream x ${UNPACED_TOKENS} tokens; paced: ${STREAMS} streams x ${PACED_TOKENS} tokens at ${PACE_MS} ms`);
  console.log('| chain | unpaced µs/token | unpaced tokens/s | paced µs/token |');
  console.log('|---|---|---|---|');
  for (let rep = 1; rep <= REPS; rep++) {
    for (const [name, chain] of Object.entries(all)) {
      const unpaced = await measure(() => consume(chain, UNPACED_TOKENS, 0));
      const paced = await measure(async () => (await Promise.all(Array.from({ length: STREAMS }, () => consume(chain, PACED_TOKENS, PACE_MS)))).reduce((a, b) => a + b, 0));
      console.log(`| ${name} (rep ${rep}) | ${unpaced.usPerToken.toFixed(2)} | ${Math.round(unpaced.tokensPerSecond)} | ${paced.usPerToken.toFixed(2)} |`);
    }
  }
  child.kill();
}

if (process.argv.includes('--upstream')) serveUpstream();
else
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
