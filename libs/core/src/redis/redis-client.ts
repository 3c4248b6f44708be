import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { TokenwireConfig } from '../config/config.schema';
import { redisConnectionOptions } from './redis-options';

/**
 * A Redis connection for the configured topology: standalone or Sentinel (`Redis`),
 * or Redis Cluster (`Cluster`, typed as `Redis`: every command Tokenwire uses works on
 * both, and every multi-key script and MULTI stays inside one hash tag).
 */
export function createRedisClient(redis: TokenwireConfig['redis'], options: RedisOptions = {}): Redis {
  if (!redis.clusterNodes.length) return new Redis({ ...redisConnectionOptions(redis), ...options });
  const { host: _host, port: _port, db: _db, ...credentials } = redisConnectionOptions(redis);
  const { enableAutoPipelining, ...rest } = options;
  return new Cluster(redis.clusterNodes, { enableAutoPipelining, redisOptions: { ...credentials, ...rest } }) as unknown as Redis;
}

/** The connection BullMQ gets: options for standalone/Sentinel (it opens its own), a Cluster instance for Cluster. */
export function bullConnection(redis: TokenwireConfig['redis']): RedisOptions | Redis {
  return redis.clusterNodes.length
    ? createRedisClient(redis, { maxRetriesPerRequest: null, connectionName: 'tokenwire-bullmq' })
    : { ...redisConnectionOptions(redis), maxRetriesPerRequest: null };
}

/** Closes what bullConnection() opened (nothing for plain options: BullMQ closes its own). */
export async function closeBullConnection(connection: RedisOptions | Redis): Promise<void> {
  if (connection instanceof Redis || connection instanceof Cluster) await connection.quit().catch(() => connection.disconnect());
}
