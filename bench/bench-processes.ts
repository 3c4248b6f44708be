import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
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
