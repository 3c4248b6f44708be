import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';

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
