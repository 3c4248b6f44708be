/**
 * Lua for batches. Every batch key shares the hash tag `{batch:<id>}`, so each script runs on one
 * Cluster slot, and a step that moves an item (pending → in flight → recorded) is one atomic step:
 * a process that dies between two steps leaves an item in exactly one place, where the recovery
 * sweep finds it. ioredis sends these with EVALSHA and falls back to EVAL.
 */

/**
 * Fills the batch's free slots: moves indexes from the pending list to the in-flight set (score: now)
 * while the set is smaller than the batch's concurrency, and returns them. The caller then adds their
 * jobs; if it dies first, the sweep finds in-flight indexes without a job and adds them.
 * Nothing moves once the batch is cancelling or ended.
 * KEYS: 1 batch hash, 2 pending list, 3 in-flight set. ARGV (of the calling script): 1 now, 2 concurrency when the hash has none.
 */
const TAKE_FUNCTION = `
local function take(batch, pending, inflight, now, defaultConcurrency)
  if redis.call('HGET', batch, 'status') ~= 'in_progress' then return {} end
  local concurrency = tonumber(redis.call('HGET', batch, 'concurrency') or defaultConcurrency)
  local free = concurrency - redis.call('ZCARD', inflight)
  if free <= 0 then return {} end
  local taken = redis.call('LPOP', pending, free)
  if not taken then return {} end
  for _, index in ipairs(taken) do redis.call('ZADD', inflight, now, index) end
  local ttl = redis.call('TTL', batch)
  if ttl > 0 then redis.call('EXPIRE', inflight, ttl) end
  return taken
end
`;

/** Takes the indexes to hand to the queue now. KEYS and ARGV as `take`. Returns the indexes (strings). */
export const TAKE_LUA = `${TAKE_FUNCTION}
return take(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
`;

/**
 * Records an item's result once, frees its slot, ends the batch when every item is accounted for,
 * and takes the indexes that fill the freed slot (in the same step, so a slot is never lost).
 * KEYS: 1 batch hash, 2 results hash, 3 pending list, 4 in-flight set.
 * ARGV: 1 now, 2 default concurrency, 3 index, 4 output line JSON, 5 counter (completed|failed), 6 ttl seconds.
 * Returns {recorded (1, or 0 when the item already had a result: a re-run after a crash), taken indexes...}.
 */
export const RECORD_LUA = `${TAKE_FUNCTION}
local recorded = redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZREM', KEYS[4], ARGV[3])
if recorded == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[6])
  redis.call('HINCRBY', KEYS[1], ARGV[5], 1)
  local c = redis.call('HMGET', KEYS[1], 'total', 'completed', 'failed', 'cancelled', 'status')
  if tonumber(c[2]) + tonumber(c[3]) + tonumber(c[4]) >= tonumber(c[1]) then
    redis.call('HSET', KEYS[1], 'status', (c[5] == 'cancelling') and 'cancelled' or 'completed', 'finishedAt', ARGV[1])
  end
end
local result = take(KEYS[1], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
table.insert(result, 1, recorded)
return result
`;

/**
 * Cancels the items not yet handed to the queue; the in-flight ones finish. Their indexes are the ones
 * neither recorded nor in flight once the pending list is gone (the errors view reads them so).
 * KEYS: 1 batch hash, 2 pending list. ARGV: 1 now.
 * Returns how many were cancelled, or -1 when the batch had already ended.
 */
export const CANCEL_LUA = `
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'in_progress' then return -1 end
local n = redis.call('LLEN', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('HINCRBY', KEYS[1], 'cancelled', n)
local c = redis.call('HMGET', KEYS[1], 'total', 'completed', 'failed', 'cancelled')
if tonumber(c[2]) + tonumber(c[3]) + tonumber(c[4]) >= tonumber(c[1]) then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finishedAt', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'status', 'cancelling')
end
return n
`;
