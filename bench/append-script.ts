/**
 * The append script alone, in Redis: G generations, each claimed by a run, get one event per call
 * (the shape of paced streams: a turn holds about one event per generation), for R rounds, calls
 * sent back to back. Reports Redis's CPU per event (INFO cpu: getrusage, so a busy machine inflates
 * it less than the wall-clock times of INFO commandstats, which are printed too).
 *
 *   npm run build && node scripts/with-redis.mjs node bench/dist/append-script.js [G] [events per call] [rounds]
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisKeys } from '@tokenwire/contracts';
import { EventLog } from '@tokenwire/core';
import { redisCpuSeconds } from './bench-processes';

const GENERATIONS = Number(process.argv[2] ?? 1000);
const PER_CALL = Number(process.argv[3] ?? 50);
const ROUNDS = Number(process.argv[4] ?? 20);

async function main(): Promise<void> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(url);
  const probe = new Redis(url);
  const prefix = `append-script-${process.pid}`;
  const keys = redisKeys(prefix);
  const log = new EventLog(redis, keys, { ttlSeconds: 600, maxEvents: 10_000 });
  const appenders = await Promise.all(
    Array.from({ length: GENERATIONS }, async () => {
      const [generationId, runToken] = [randomUUID(), randomUUID()];
      await redis.hset(keys.meta(generationId), 'status', 'queued');
      await log.claimRun(generationId, runToken);
      return log.appender(generationId, runToken);
    }),
  );
  // One round: every generation appends once; PER_CALL appends are issued in one turn (one script call).
  let seq = 0;
  const round = async () => {
    seq++;
    for (let start = 0; start < GENERATIONS; start += PER_CALL) {
      const results = await Promise.all(appenders.slice(start, start + PER_CALL).map((append) => append(seq, { type: 'chunk', delta: `${Date.now()}|` })));
      if (results.some((result) => result !== 'written')) throw new Error(`an append was refused: ${results.join(',')}`);
    }
  };
  await round(); // warm-up: script cache, logs created
  await probe.config('RESETSTAT');
  const before = await redisCpuSeconds(probe);
  for (let i = 0; i < ROUNDS; i++) await round();
  const events = ROUNDS * GENERATIONS;
  const cpu = (await redisCpuSeconds(probe)) - before;
  const stats = await probe.info('commandstats');
  const perEvent = [...stats.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)]
    .filter(([, name]) => name !== 'info' && name !== 'config')
    .map(([, name, calls, usec]) => `${name} ${(Number(calls) / events).toFixed(2)}× ${(Number(usec) / events).toFixed(2)} µs`);
  console.log(`G=${GENERATIONS} per call=${PER_CALL} events=${events}: Redis CPU ${((cpu * 1e6) / events).toFixed(2)} µs/event; inside commands: ${perEvent.join('; ')}`);
  const found = await probe.keys(`${prefix}*`);
  for (let i = 0; i < found.length; i += 500) await probe.del(...found.slice(i, i + 500));
  redis.disconnect();
  probe.disconnect();
}

void main();
