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
  // A periodic slots refresh: ioredis hands a MOVED inside an auto-pipeline back to the caller without
  // re-reading the slots map, so once every command is auto-pipelined, a map that went stale in a failover
  // (read from a node that had not yet heard of the promotion) is never corrected: the api's replay reads
  // got MOVED for their whole 15 s retry and closed their streams. One CLUSTER SLOTS per interval.
  return new Cluster(redis.clusterNodes, { enableAutoPipelining, slotsRefreshInterval: SLOTS_REFRESH_MS, redisOptions: { ...credentials, ...rest } }) as unknown as Redis;
}

/**
 * Whether generations' live channels are sharded (SPUBLISH/SSUBSCRIBE): on a Cluster unless
 * `redis.clusterPubSub` is `classic`. A classic PUBLISH on a Cluster is copied over the cluster bus
 * to every node, so its cost per event grows with the number of nodes; a sharded one stays on the
 * shard that owns the channel's slot (the generation's hash tag, the slot of its event log).
 */
export function usesShardedPubSub(redis: TokenwireConfig['redis']): boolean {
  return redis.clusterNodes.length > 0 && redis.clusterPubSub === 'sharded';
}

/** How often a Cluster connection re-reads the slots map (one CLUSTER SLOTS per connection). */
const SLOTS_REFRESH_MS = 5_000;

/**
 * The connection an api process follows live channels on. For sharded pub/sub a Cluster whose
 * SSUBSCRIBEs ioredis routes to one subscriber connection per master (`shardedSubscribers`),
 * replaced and re-subscribed when the slots map changes (failover, resharding); otherwise one
 * ordinary connection.
 */
export function createLiveSubscriberClient(redis: TokenwireConfig['redis'], connectionName: string): Redis {
  if (!usesShardedPubSub(redis)) return createRedisClient(redis, { connectionName, enableAutoPipelining: false });
  const { host: _host, port: _port, db: _db, ...credentials } = redisConnectionOptions(redis);
  // A slot that migrates (resharding) takes its shard channels along, and Redis drops their subscribers
  // with an SUNSUBSCRIBE ioredis does not report; a periodic slots refresh notices the new owner, and
  // ioredis then subscribes there and emits 'subscribersReady' (the api re-reads the logs on it).
  return new Cluster(redis.clusterNodes, { shardedSubscribers: true, slotsRefreshInterval: SLOTS_REFRESH_MS, redisOptions: { ...credentials, connectionName } }) as unknown as Redis;
}

/** The connection BullMQ gets: options for standalone/Sentinel (it opens its own), a Cluster instance for Cluster. */
export function bullConnection(redis: TokenwireConfig['redis'], options: Pick<RedisOptions, 'enableAutoPipelining'> = {}): RedisOptions | Redis {
  return redis.clusterNodes.length
    ? createRedisClient(redis, { maxRetriesPerRequest: null, connectionName: 'tokenwire-bullmq', ...options })
    : { ...redisConnectionOptions(redis), maxRetriesPerRequest: null, ...options };
}

/** Closes what bullConnection() opened (nothing for plain options: BullMQ closes its own). */
export async function closeBullConnection(connection: RedisOptions | Redis): Promise<void> {
  if (connection instanceof Redis || connection instanceof Cluster) await connection.quit().catch(() => connection.disconnect());
}
