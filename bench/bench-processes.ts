import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { LoadReply, LoadTask } from './load';

/** A process a bench watches (CPU, RSS, wake-ups from /proc) and may stop. */
export interface Proc {
  name: string;
  pid: number;
  child?: ChildProcess;
}

/** Forks a load generator (bench/load.ts) for `task` and waits until it is ready (sockets connected); send it `start`. */
export async function forkLoad(task: LoadTask): Promise<{ child: ChildProcess; reply: Promise<LoadReply> }> {
  const child = fork(path.join(__dirname, 'load.js'));
  const reply = new Promise<LoadReply>((resolve, reject) => {
    child.on('message', (m: { type: string; reply?: LoadReply; error?: string }) => {
      if (m.type === 'results') resolve(m.reply!);
      if (m.type === 'failed') reject(new Error(m.error));
    });
    child.once('exit', (code) => (code ? reject(new Error(`load generator exited with ${code}`)) : undefined));
  });
  const ready = new Promise<void>((resolve) => child.on('message', (m: { type: string }) => m.type === 'ready' && resolve()));
  child.send({ type: 'prepare', task });
  await Promise.race([ready, reply]);
  return { child, reply };
}

/** The private redis-server that with-redis.mjs started (its title is `redis-server <host>:<port>`): its pid, for /proc accounting. */
export function findRedisPid(): number | undefined {
  const port = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').port || '6379';
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.startsWith('redis-server') && cmd.includes(`:${port}`)) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system) the Redis server behind `redis` has used, from `INFO cpu`. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** Calls per Redis command so far (INFO commandstats; a script's inner commands count too). */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  return new Map([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/**
 * A gateway config file for a bench: one OpenAI-compatible model per upstream (name → base URL, without
 * `/v1`), and limits far above any load, since the benches measure the path, not admission. Returns its path.
 */
export function writeBenchConfig(models: Record<string, string>): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'tokenwire-bench-')), 'tokenwire.yaml');
  writeFileSync(
    file,
    [
      'models:',
      ...Object.entries(models).map(([name, url]) => `  - { name: ${name}, provider: openai-compatible, options: { baseUrl: "${url}/v1", includeUsage: false } }`),
      'limits: { maxConcurrent: 1000000, requestsPerMinute: 100000000, tokensPerMinute: 1000000000, maxOutputTokens: 1000000 }',
    ].join('\n'),
  );
  return file;
}

/** Resolves once `url` answers 2xx; throws after 30 s. */
export async function waitFor(url: string): Promise<void> {
  for (const deadline = Date.now() + 30_000; ; ) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer within 30 s`);
    await sleep(100);
  }
}

const PORTKEY_ENTRY = path.join(__dirname, '..', '..', 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');

/**
 * The peer: Portkey's open-source gateway (a Hono server on Node), one process, as `npx @portkey-ai/gateway`
 * runs it; undefined when it is not installed. It learns the upstream from headers (`portkeyHeaders`).
 */
export async function startPortkey(): Promise<{ proc: Proc; url: string } | undefined> {
  if (!existsSync(PORTKEY_ENTRY)) return undefined;
  const port = await freePort();
  const child = spawn(process.execPath, [PORTKEY_ENTRY, `--port=${port}`, '--headless'], {
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(url);
  return { proc: { name: 'portkey', pid: child.pid!, child }, url };
}

/** The headers that send a Portkey request to the bench upstream as an OpenAI provider. */
export const portkeyHeaders = (upstreamUrl: string): Record<string, string> => ({
  authorization: 'Bearer bench',
  'x-portkey-provider': 'openai',
  'x-portkey-custom-host': `${upstreamUrl}/v1`,
});
