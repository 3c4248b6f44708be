/**
 * `npm run build && node bench/dist/shard-ceiling.js`: how many appended-and-delivered tokens one
 * Cluster shard takes on one core. A local Cluster of 3 masters; SHARD_GENERATIONS generations whose
 * hash slots all live on the first master; each is claimed (`EventLog.claimRun`, so the append script
 * checks ownership as in a real run), then appended to as fast as the writer can go (the worker's own
 * `EventLog.appender`, SPUBLISH, auto-pipelined, SHARD_IN_FLIGHT appends outstanding), while one
 * sharded subscriber follows every channel (one api process's delivery). Reports appends/s, messages
 * received/s and that master's CPU (`INFO cpu`) over SHARD_SECONDS.
 * The writer and the subscriber run in this process, on the same 2 shared cores as Redis: if Redis
 * stays below one core, the writer is the limit and the per-token CPU gives the ceiling.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster, type Redis } from 'ioredis';
import { redisKeys } from '@tokenwire/contracts';
import { EventLog } from '@tokenwire/core';

const run = promisify(execFile);
const GENERATIONS = Number(process.env.SHARD_GENERATIONS ?? 1000);
const IN_FLIGHT = Number(process.env.SHARD_IN_FLIGHT ?? 4000);
const SECONDS = Number(process.env.SHARD_SECONDS ?? 8);

interface ClusterHandle {
  ports: number[];
  nodes: Array<{ host: string; port: number }>;
  start(): Promise<void>;
  stop(): Promise<void>;
  masterOf(key: string): Promise<number>;
  view(): Promise<Array<{ port: number; role: string; slots: Array<[number, number]> }>>;
}
// The tests' Cluster helper (test/support/redis-cluster.ts), from its build: bench and test compile separately.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { PrivateRedisCluster } = require(path.join(__dirname, '..', '..', 'test', 'dist', 'support', 'redis-cluster.js')) as {
  PrivateRedisCluster: new (options: { masters: number }) => ClusterHandle;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const slotOf = require('cluster-key-slot') as (key: string) => number;

async function cpuSeconds(port: number): Promise<number> {
  const info = (await run('redis-cli', ['-p', String(port), 'info', 'cpu'])).stdout;
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_sys') + field('used_cpu_user');
}

async function main(): Promise<void> {
  const cluster = new PrivateRedisCluster({ masters: 3 });
  await cluster.start();
  const writerClient = new Cluster(cluster.nodes, { enableAutoPipelining: true }) as unknown as Redis;
  const subscriber = new Cluster(cluster.nodes, { shardedSubscribers: true }) as unknown as Redis;
  try {
    const keys = redisKeys(`shard-${Date.now()}`);
    const target = await cluster.masterOf(keys.eventLog('probe'));
    // The slots the target master serves: pick generation ids that hash there.
    const ranges = (await cluster.view()).find((node) => node.port === target)!.slots;
    const onTarget = (id: string) => {
      const slot = slotOf(keys.eventLog(id));
      return ranges.some(([first, last]) => slot >= first && slot <= last);
    };
    const ids: string[] = [];
    while (ids.length < GENERATIONS) {
      const id = randomUUID();
      if (onTarget(id)) ids.push(id);
    }
    const log = new EventLog(writerClient, keys, { ttlSeconds: 600, maxEvents: 100_000 }, 'SPUBLISH');
    let received = 0;
    subscriber.on('smessage', () => received++);
    await Promise.all(ids.map((id) => subscriber.ssubscribe(keys.liveChannel(id))));
    const appenders = await Promise.all(
      ids.map(async (id) => {
        const runToken = randomUUID();
        await log.claimRun(id, runToken);
        return { append: log.appender(id, runToken), seq: 0 };
      }),
    );

    let appended = 0;
    let inFlight = 0;
    let stop = false;
    let next = 0;
    const body = { type: 'chunk' as const, delta: ' token' };
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (!stop && inFlight < IN_FLIGHT) {
          const writer = appenders[next++ % appenders.length]!;
          inFlight++;
          writer
            .append(++writer.seq, body)
            .then((result) => {
              if (result !== 'written') throw new Error(`append refused: ${result}`);
              appended++;
            })
            .catch((error: unknown) => {
              console.error(error);
              process.exit(1);
            })
            .finally(() => {
              inFlight--;
              if (stop && inFlight === 0) resolve();
              else if (inFlight < IN_FLIGHT / 2) setImmediate(pump);
            });
        }
      };
      // Warm-up, then the measured window.
      pump();
      setTimeout(() => {
        void (async () => {
          const from = { at: performance.now(), cpu: await cpuSeconds(target), appended, received };
          await new Promise((r) => setTimeout(r, SECONDS * 1000));
          const to = { at: performance.now(), cpu: await cpuSeconds(target), appended, received };
          stop = true;
          const seconds = (to.at - from.at) / 1000;
          const appendsPerSecond = (to.appended - from.appended) / seconds;
          const cpuShare = (to.cpu - from.cpu) / seconds;
          console.log(
            [
              `One shard (the master on port ${target}), ${GENERATIONS} generations, ${IN_FLIGHT} appends in flight, ${seconds.toFixed(1)} s:`,
              '',
              '| appends/s | messages delivered/s | Redis CPU, share of one core | Redis CPU µs per token | tokens/s at 100 % of the core (extrapolated) |',
              '|---|---|---|---|---|',
              `| ${Math.round(appendsPerSecond)} | ${Math.round((to.received - from.received) / seconds)} | ${(cpuShare * 100).toFixed(0)} % | ${((cpuShare / appendsPerSecond) * 1e6).toFixed(1)} | ${Math.round(appendsPerSecond / cpuShare)} |`,
            ].join('\n'),
          );
        })();
      }, 2000);
    });
  } finally {
    writerClient.disconnect();
    subscriber.disconnect();
    await cluster.stop();
  }
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
