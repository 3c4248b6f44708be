/**
 * The worker's write path alone: C generations each append one chunk event every 20 ms through
 * EventLog (no upstream, no api), as paced streams do at C = 1000. Reports this process's CPU and
 * Redis's CPU per event, so a change to the append path is measured without the rest of the bench.
 *
 *   npm run build && node scripts/with-redis.mjs node bench/dist/append-path.js [C] [seconds]
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisKeys } from '@tokenwire/contracts';
import { EventLog } from '@tokenwire/core';
import { redisCpuSeconds } from './bench-processes';

const CONCURRENCY = Number(process.argv[2] ?? 1000);
const SECONDS = Number(process.argv[3] ?? 5);
const PACE_MS = 20;

async function main(): Promise<void> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(url, { enableAutoPipelining: true });
  const probe = new Redis(url);
  const prefix = `append-path-${process.pid}`;
  const log = new EventLog(redis, redisKeys(prefix), { ttlSeconds: 60, maxEvents: 10_000 });
  // Each generation claimed by a run, as the worker's are: the script then checks the run's ownership per call.
  const appenders = await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      const [generationId, runToken] = [randomUUID(), randomUUID()];
      await log.claimRun(generationId, runToken);
      return log.appender(generationId, runToken);
    }),
  );
  const seqs = new Array<number>(CONCURRENCY).fill(0);
  let written = 0;
  let failed = 0;
  const tick = (i: number) => {
    const seq = ++seqs[i]!;
    appenders[i]!(seq, { type: 'chunk', delta: `${Date.now()}|` }).then(
      () => written++,
      () => failed++,
    );
  };
  // Warm-up: JIT and script cache.
  for (let i = 0; i < CONCURRENCY; i++) tick(i);
  await new Promise((resolve) => setTimeout(resolve, 500));
  await probe.config('RESETSTAT');
  const [cpuBefore, redisBefore, writtenBefore] = [process.cpuUsage(), await redisCpuSeconds(probe), written];
  const timers = appenders.map((_, i) => setTimeout(() => timers[i] = setInterval(() => tick(i), PACE_MS), (i * PACE_MS) / CONCURRENCY));
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  for (const timer of timers) clearInterval(timer);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const cpu = process.cpuUsage(cpuBefore);
  const redisCpu = (await redisCpuSeconds(probe)) - redisBefore;
  const events = written - writtenBefore;
  console.log(
    `C=${CONCURRENCY} events=${events} (${Math.round(events / SECONDS)}/s) failed=${failed} ` +
      `writer CPU ${(((cpu.user + cpu.system) / events)).toFixed(1)} µs/event, Redis CPU ${((redisCpu * 1e6) / events).toFixed(1)} µs/event`,
  );
  // Time inside Redis commands per event (the script's inner calls are counted too), less noisy than
  // its process CPU: it leaves out the event loop and the socket reads and writes.
  const stats = await probe.info('commandstats');
  const perEvent = [...stats.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)]
    .filter(([, name]) => name !== 'info' && name !== 'config')
    .map(([, name, calls, usec]) => `${name} ${(Number(calls) / events).toFixed(2)} calls ${(Number(usec) / events).toFixed(2)} µs`);
  console.log(`per event, inside Redis: ${perEvent.join('; ')}`);
  const keys = await probe.keys(`${prefix}*`);
  for (let i = 0; i < keys.length; i += 500) await probe.del(...keys.slice(i, i + 500));
  redis.disconnect();
  probe.disconnect();
}

void main();
