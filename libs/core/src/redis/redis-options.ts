import type { RedisOptions } from 'ioredis';
import type { TokenwireConfig } from '../config/config.schema';

/** ioredis options from a redis:// URL, for clients (like BullMQ's) that take options, not URLs. */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const parsed = new URL(url);
  const db = parsed.pathname.replace(/^\//, '');
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: db ? Number(db) : undefined,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  };
}

/**
 * Connection options for every Redis client of the process. With `redis.sentinels`
 * the master named `redis.sentinelName` is found (and followed on failover) through
 * Sentinel; credentials, db and TLS still come from `redis.url`.
 */
export function redisConnectionOptions(redis: TokenwireConfig['redis']): RedisOptions {
  const options = redisOptionsFromUrl(redis.url);
  if (!redis.sentinels.length) return options;
  const { host: _host, port: _port, ...rest } = options;
  return { ...rest, sentinels: redis.sentinels, name: redis.sentinelName };
}
