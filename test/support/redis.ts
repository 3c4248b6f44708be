import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

/** The Redis the suite runs against: `npm test` sets REDIS_URL (a private server unless the caller gave one). */
export function testRedisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set: run the tests with `npm test` (it starts a private redis-server)');
  return url;
}

/** A key prefix of its own for each test, so tests never see each other's data. */
export function uniquePrefix(): string {
  return `test-${randomUUID().slice(0, 8)}`;
}

/** Deletes every key under `prefix` (the test's own data). */
export async function deletePrefix(prefix: string, url = testRedisUrl()): Promise<void> {
  const redis = new Redis(url);
  try {
    // The prefix's own keys, and BullMQ's, which live under `{prefix}:bull` (redisKeys().bullPrefix()).
    for (const pattern of [`${prefix}:*`, `{${prefix}}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}
