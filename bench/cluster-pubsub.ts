/**
 * `npm run build && node bench/dist/cluster-pubsub.js`: Redis cost per delivered token on a local
 * Redis Cluster of 3 and of 6 masters, with classic PUBLISH and with sharded SPUBLISH
 * (`redis.clusterPubSub`). For each, one api and one worker (in this process) serve
 * CLUSTER_STREAMS concurrent streams of the demo model, read to the end over SSE by this process.
 *
 * Measured on each node, over a steady window (from every stream having its first token to the
 * first stream ending, so admission and endings stay out): CPU (`INFO cpu`), commands
 * (`INFO commandstats`), client bytes in and out (`INFO stats`) and cluster-bus publish messages
 * (`CLUSTER INFO`), each divided by the tokens the clients received in that window.
 *
 * Knobs: CLUSTER_MASTERS=3,6  CLUSTER_MODES=classic,sharded  CLUSTER_STREAMS=1000
 *        CLUSTER_TOKENS=100  CLUSTER_TOKEN_DELAY_MS=100
 */
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createParser } from 'eventsource-parser';
import { createApi } from '@tokenwire/api';
import { createWorker } from '@tokenwire/worker';

const run = promisify(execFile);
const list = (value: string | undefined, fallback: string) => (value ?? fallback).split(',').map((v) => v.trim());
const MASTERS = list(process.env.CLUSTER_MASTERS, '3,6').map(Number);
const MODES = list(process.env.CLUSTER_MODES, 'classic,sharded') as Array<'classic' | 'sharded'>;
const STREAMS = Number(process.env.CLUSTER_STREAMS ?? 1000);
const TOKENS = Number(process.env.CLUSTER_TOKENS ?? 100);
const TOKEN_DELAY_MS = Number(process.env.CLUSTER_TOKEN_DELAY_MS ?? 100);

/** The Cluster helper the tests use (test/support/redis-cluster.ts), from its build: bench and test compile separately. */
interface ClusterHandle {
  ports: number[];
  nodes: Array<{ host: string; port: number }>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { PrivateRedisCluster } = require(path.join(__dirname, '..', '..', 'test', 'dist', 'support', 'redis-cluster.js')) as {
  PrivateRedisCluster: new (options: { masters: number }) => ClusterHandle;
};

interface NodeSample {
  cpuSeconds: number;
  commands: number;
  commandCalls: Record<string, number>;
  netInBytes: number;
  netOutBytes: number;
  busPublishSent: number;
  usedMemory: number;
}

async function sample(port: number): Promise<NodeSample> {
  const info = (await run('redis-cli', ['-p', String(port), 'info', 'all'])).stdout;
  const cluster = (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout;
  const field = (text: string, name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0);
  const commandCalls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commandCalls[match[1]!] = Number(match[2]);
  return {
    cpuSeconds: field(info, 'used_cpu_sys') + field(info, 'used_cpu_user'),
    commands: Object.values(commandCalls).reduce((a, b) => a + b, 0),
    commandCalls,
    netInBytes: field(info, 'total_net_input_bytes'),
    netOutBytes: field(info, 'total_net_output_bytes'),
    // Cluster-bus messages carrying a classic PUBLISH (7.0 calls the sharded kind `publishshard`).
    busPublishSent: field(cluster, 'cluster_stats_messages_publish_sent') + field(cluster, 'cluster_stats_messages_publishshard_sent'),
    usedMemory: field(info, 'used_memory'),
  };
}

interface RowResult {
  masters: number;
  mode: 'classic' | 'sharded';
  tokens: number;
  seconds: number;
  perNode: Array<{ port: number; cpuMicrosPerToken: number; commandsPerToken: number; busPublishPerToken: number; outBytesPerToken: number; inBytesPerToken: number }>;
  topCommands: string;
  notDone: number;
  perGeneration: { commands: number; cpuMicros: number; busiestNodeCpuMicros: number; inBytes: number; outBytes: number; usedMemory: number };
}

async function runRow(cluster: ClusterHandle, masters: number, mode: 'classic' | 'sharded'): Promise<RowResult> {
  const config = {
    redis: { url: 'redis://127.0.0.1:6379', clusterNodes: cluster.nodes, clusterPubSub: mode, prefix: `bench-cluster-${mode}-${Date.now()}` },
    api: { host: '127.0.0.1', port: 0, metricsPort: 0, sseCompression: false },
    worker: { concurrency: STREAMS + 10, metricsPort: 0 },
    ollama: { discover: [] },
    log: { level: 'error' as const },
    limits: { maxConcurrent: 1_000_000, requestsPerMinute: 10_000_000, tokensPerMinute: 1_000_000_000 },
    models: [{ name: 'demo', provider: 'demo', options: { tokenDelayMs: TOKEN_DELAY_MS, tokens: TOKENS } }],
  };
  const worker = await createWorker(config, {});
  const api = await createApi(config, {});
  let delivered = 0;
  let started = 0;
  let ended = 0;
  let notDone = 0;
  const firstTokenSeen = new Set<number>();
  let steadyFrom: { at: number; tokens: number; nodes: NodeSample[] } | undefined;
  let steadyTo: { at: number; tokens: number; nodes: NodeSample[] } | undefined;
  const snapshot = async () => ({ at: performance.now(), tokens: delivered, nodes: await Promise.all(cluster.ports.map(sample)) });
  let snapshotting: Promise<void> | undefined;

  const stream = async (index: number) => {
    const created = await fetch(`${api.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: `stream ${index}` }] }),
    });
    const { id } = (await created.json()) as { id: string };
    started++;
    const response = await fetch(`${api.url}/v1/generations/${id}/events`);
    const decoder = new TextDecoder();
    let done = false;
    const parser = createParser({
      onEvent: (event) => {
        if (event.data.includes('"type":"chunk"')) {
          delivered++;
          if (!firstTokenSeen.has(index)) {
            firstTokenSeen.add(index);
            if (firstTokenSeen.size === STREAMS) snapshotting = snapshot().then((s) => void (steadyFrom = s));
          }
        }
        if (/"type":"(done|error|cancelled)"/.test(event.data)) {
          done = true;
          if (!event.data.includes('"type":"done"')) notDone++;
        }
      },
    });
    for await (const bytes of response.body as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(bytes, { stream: true }));
      if (done) break;
    }
    if (!done) notDone++;
    if (ended++ === 0 && steadyFrom) {
      await snapshotting;
      steadyTo = await snapshot();
    }
  };
  const runFrom = await snapshot();
  const startedAt = performance.now();
  // The first stream alone, until its first token: in classic mode a burst of first SUBSCRIBEs while
  // ioredis's cluster subscriber connection is still starting fails some of them ("Connection in
  // subscriber mode", its ready check racing the SUBSCRIBEs), which is not what is measured here.
  const first = stream(0);
  while (!firstTokenSeen.has(0)) await new Promise((resolve) => setTimeout(resolve, 20));
  await Promise.all([first, ...Array.from({ length: STREAMS - 1 }, (_, i) => stream(i + 1))]);
  const seconds = (performance.now() - startedAt) / 1000;
  // Jobs done and listeners gone: what is left after the last token is part of each generation's cost.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const runTo = await snapshot();
  await api.close();
  await worker.close();
  if (!steadyFrom || !steadyTo) throw new Error(`no steady window (${started} started): streams ended before all had their first token; raise CLUSTER_TOKENS`);
  const tokens = steadyTo.tokens - steadyFrom.tokens;
  const calls: Record<string, number> = {};
  const perNode = cluster.ports.map((port, i) => {
    const a = steadyFrom!.nodes[i]!;
    const b = steadyTo!.nodes[i]!;
    for (const [name, count] of Object.entries(b.commandCalls)) calls[name] = (calls[name] ?? 0) + count - (a.commandCalls[name] ?? 0);
    return {
      port,
      cpuMicrosPerToken: ((b.cpuSeconds - a.cpuSeconds) * 1e6) / tokens,
      commandsPerToken: (b.commands - a.commands) / tokens,
      busPublishPerToken: (b.busPublishSent - a.busPublishSent) / tokens,
      outBytesPerToken: (b.netOutBytes - a.netOutBytes) / tokens,
      inBytesPerToken: (b.netInBytes - a.netInBytes) / tokens,
    };
  });
  // Per generation: the whole run (admission to the end, every stream) less its tokens at the steady per-token cost.
  const total = (pick: (n: NodeSample) => number) => runTo.nodes.reduce((sum, n, i) => sum + pick(n) - pick(runFrom.nodes[i]!), 0);
  const steady = (pick: (n: NodeSample) => number) => steadyTo!.nodes.reduce((sum, n, i) => sum + pick(n) - pick(steadyFrom!.nodes[i]!), 0) / tokens;
  const runTokens = runTo.tokens - runFrom.tokens;
  const perGeneration = {
    commands: (total((n) => n.commands) - steady((n) => n.commands) * runTokens) / STREAMS,
    cpuMicros: ((total((n) => n.cpuSeconds) - steady((n) => n.cpuSeconds) * runTokens) * 1e6) / STREAMS,
    inBytes: (total((n) => n.netInBytes) - steady((n) => n.netInBytes) * runTokens) / STREAMS,
    outBytes: (total((n) => n.netOutBytes) - steady((n) => n.netOutBytes) * runTokens) / STREAMS,
    usedMemory: total((n) => n.usedMemory) / STREAMS,
    // The node that carries most of it: the one serving the BullMQ queue's slot.
    busiestNodeCpuMicros: Math.max(
      ...runTo.nodes.map((n, i) => {
        const a = runFrom.nodes[i]!;
        const perToken = (steadyTo!.nodes[i]!.cpuSeconds - steadyFrom!.nodes[i]!.cpuSeconds) / tokens;
        return ((n.cpuSeconds - a.cpuSeconds - perToken * runTokens) * 1e6) / STREAMS;
      }),
    ),
  };
  const topCommands = Object.entries(calls)
    .filter(([, count]) => count > 0)
    .sort((x, y) => y[1] - x[1])
    .slice(0, 6)
    .map(([name, count]) => `${name} ${(count / tokens).toFixed(2)}`)
    .join(', ');
  console.error(`${masters} masters, ${mode}: ${tokens} tokens in the steady window of ${((steadyTo.at - steadyFrom.at) / 1000).toFixed(1)} s (${delivered} in all, ${seconds.toFixed(1)} s)`);
  return { masters, mode, tokens, seconds: (steadyTo.at - steadyFrom.at) / 1000, perNode, topCommands, notDone, perGeneration };
}

async function main(): Promise<void> {
  const rows: RowResult[] = [];
  for (const masters of MASTERS) {
    const cluster = new PrivateRedisCluster({ masters });
    await cluster.start();
    try {
      for (const mode of MODES) rows.push(await runRow(cluster, masters, mode));
    } finally {
      await cluster.stop();
    }
  }
  const fmt = (n: number, digits = 2) => n.toFixed(digits);
  const lines = [
    `${STREAMS} concurrent streams of ${TOKENS} tokens, ${TOKEN_DELAY_MS} ms apart; per delivered token, over the steady window:`,
    '',
    '| masters | pub/sub | tokens/s delivered | Redis CPU µs per token, all nodes | per node (each) | commands per token, all nodes | cluster-bus publish messages per token | client bytes in / out per token, all nodes | commands per token (top) | streams not ending done |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((row) => {
      const sum = (pick: (n: RowResult['perNode'][number]) => number) => row.perNode.reduce((a, n) => a + pick(n), 0);
      return `| ${row.masters} | ${row.mode} | ${Math.round(row.tokens / row.seconds)} | ${fmt(sum((n) => n.cpuMicrosPerToken), 1)} | ${row.perNode.map((n) => fmt(n.cpuMicrosPerToken, 1)).join(' / ')} | ${fmt(sum((n) => n.commandsPerToken))} | ${fmt(sum((n) => n.busPublishPerToken))} | ${Math.round(sum((n) => n.inBytesPerToken))} / ${Math.round(sum((n) => n.outBytesPerToken))} | ${row.topCommands} | ${row.notDone} |`;
    }),
  ];
  lines.push(
    '',
    'Per generation, beyond its tokens (the whole run less its tokens at the steady per-token cost, ÷ streams; used_memory: what the run left, finished logs included):',
    '',
    '| masters | pub/sub | Redis commands | Redis CPU µs, all nodes | of which on the busiest node | client bytes in / out | used_memory added |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      ({ masters, mode, perGeneration: g }) =>
        `| ${masters} | ${mode} | ${Math.round(g.commands)} | ${Math.round(g.cpuMicros)} | ${Math.round(g.busiestNodeCpuMicros)} | ${Math.round(g.inBytes)} / ${Math.round(g.outBytes)} | ${(g.usedMemory / 1024).toFixed(1)} KB |`,
    ),
  );
  console.log(lines.join('\n'));
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
