import type { TokenwireConfig } from '../config/config.schema';

/** Which Redis a process uses, for its start-up line: the URL without its password, or the sentinels or cluster nodes. */
export function describeRedis(redis: TokenwireConfig['redis']): string {
  const hosts = (nodes: Array<{ host: string; port: number }>) => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  if (redis.clusterNodes.length) return `cluster ${hosts(redis.clusterNodes)} (prefix ${redis.prefix})`;
  if (redis.sentinels.length) return `sentinel ${redis.sentinelName} via ${hosts(redis.sentinels)} (prefix ${redis.prefix})`;
  const url = new URL(redis.url);
  if (url.password) url.password = '***';
  return `${url.toString()} (prefix ${redis.prefix})`;
}
