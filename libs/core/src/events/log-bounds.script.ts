/**
 * A generation's log bounds at one instant: its oldest entry, its newest entry and its meta status.
 * KEYS: 1 event log, 2 meta hash (the same hash tag, so one slot on a Cluster).
 * Returns { XRANGE … COUNT 1, XREVRANGE … COUNT 1, status or nil }.
 */
export const LOG_BOUNDS_LUA = `
return {
  redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1),
  redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1),
  redis.call('HGET', KEYS[2], 'status')
}
`;
