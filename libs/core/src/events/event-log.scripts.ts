/**
 * Lua run by Redis so that the event log and the live channel always agree:
 * an event is in both or in neither. ioredis sends these with EVALSHA and falls
 * back to EVAL, so no SCRIPT command is needed.
 */

/**
 * Append one non-terminal event.
 * KEYS: 1 event log, 2 terminal marker, 3 meta hash
 * ARGV: 1 entry id (`<seq>-0`), 2 event JSON, 3 live channel, 4 max events, 5 ttl seconds to give the
 *       log, or '' to leave its TTL (the appender renews it now and then, not per event: EventLog.appender),
 *       6 the writing run's token ('' for a writer that claimed no run),
 *       7 `SPUBLISH` for a sharded live channel (a Cluster), otherwise PUBLISH
 * The channel shares the generation's hash tag, so even SPUBLISH stays on this script's slot.
 * Returns 1; 0 when the generation already ended; -1 when another run has claimed the generation
 * (this one lost its job lock): a late writer must stop either way; -2 when the seq is not the next
 * one (the log's top is below seq - 1): an earlier append is missing, as after a Cluster failover
 * that lost it or an append retried out of order, and the writer must send the missing ones first.
 * So a log never has a hole, whatever order a failover delivers the appends in.
 * The same entry sent again is a success that changes nothing: ioredis resends the commands
 * whose replies a dropped connection lost, and Redis may have run them already.
 * A different entry at an id not above the log's top raises an error: two writers for one generation.
 * The log's top seq comes, for a run, from the meta hash's `top` field, which the run's claim
 * (CLAIM_RUN_LUA) and its appends keep equal to the log's (they change both in one script, so a
 * replica has both or neither): an HMGET instead of an XREVRANGE per call, the costliest inner call
 * (bench/README.md). The log itself is read when there is no such copy: a writer without a run, a
 * claim by an older version, or a log that is gone (expired) while meta stays.
 * Meta is never created here (HSET only after the run token matched, so it exists) and keeps no TTL
 * until the terminal event (see CREATE_META_LUA).
 */
export const APPEND_EVENT_LUA = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local topSeq
if ARGV[6] ~= '' then
  local owner = redis.call('HMGET', KEYS[3], 'run', 'top')
  if owner[1] ~= ARGV[6] then return -1 end
  if owner[2] and redis.call('EXISTS', KEYS[1]) == 1 then topSeq = tonumber(owner[2]) end
end
if topSeq == nil then
  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  topSeq = 0
  if #top > 0 then topSeq = tonumber(string.match(top[1][1], '^(%d+)')) end
end
local seq = tonumber(string.match(ARGV[1], '^(%d+)'))
if seq > topSeq + 1 then return -2 end
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], ARGV[1], 'e', ARGV[2])
if type(added) == 'table' and added.err then
  local existing = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
  if #existing == 1 and existing[1][2][2] == ARGV[2] then
    if ARGV[5] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
    return 1
  end
  return redis.error_reply(added.err)
end
if ARGV[5] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[3], 'top', seq) end
redis.call(ARGV[7] == 'SPUBLISH' and 'SPUBLISH' or 'PUBLISH', ARGV[3], ARGV[2])
return 1
`;

/**
 * Append the non-terminal events of many generations in one call: what one process wrote in one
 * event-loop turn. Per event it does what APPEND_EVENT_LUA does (the top seq from meta's `top` for a
 * run), with savings: a generation's ownership and top seq are read once per call (nothing else runs
 * inside a script, so they change only by this call's own appends). Its log's TTL is set at most once per call, and only when one of
 * its events asks (the appender asks now and then, not per event: EventLog.appender; the meta hash
 * has no TTL before the terminal event: CREATE_META_LUA).
 * KEYS: per writer w (1-based) 3w-2 event log, 3w-1 terminal marker, 3w meta hash
 * ARGV: 1 max events, 2 `SPUBLISH` for sharded live channels, otherwise PUBLISH,
 *       then 6 per event: writer index, entry id, event JSON, live channel, the writing run's token ('' for none),
 *       ttl seconds to give the log once the event is in it ('' to leave its TTL)
 * Returns one code per event: 1 written (or already there: a resend), 0 ended, -1 another run owns
 * the generation, -2 a gap (the event before it is missing), -3 a different entry already holds the id
 * (the writer's error, not the call's).
 */
export const APPEND_EVENTS_LUA = `
local state, tops, renew = {}, {}, {}
local results = {}
local publish = ARGV[2] == 'SPUBLISH' and 'SPUBLISH' or 'PUBLISH'
for i = 3, #ARGV, 6 do
  local w = tonumber(ARGV[i])
  local log, marker, meta = KEYS[3 * w - 2], KEYS[3 * w - 1], KEYS[3 * w]
  local id, event, run = ARGV[i + 1], ARGV[i + 2], ARGV[i + 4]
  local s = state[w]
  if s == nil then
    if redis.call('EXISTS', marker) == 1 then s = 0
    else
      local owner = run ~= '' and redis.call('HMGET', meta, 'run', 'top') or nil
      if owner and owner[1] ~= run then s = -1
      else
        s = 1
        if owner and owner[2] and redis.call('EXISTS', log) == 1 then tops[w] = tonumber(owner[2])
        else
          local top = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)
          tops[w] = #top > 0 and tonumber(string.match(top[1][1], '^(%d+)')) or 0
        end
      end
    end
    state[w] = s
  end
  local code = s
  if s == 1 then
    local seq = tonumber(string.match(id, '^(%d+)'))
    if seq > tops[w] + 1 then
      code = -2
    else
      local added = redis.pcall('XADD', log, 'MAXLEN', '~', ARGV[1], id, 'e', event)
      if type(added) == 'table' and added.err then
        local existing = redis.call('XRANGE', log, id, id)
        if not (#existing == 1 and existing[1][2][2] == event) then code = -3 end
      else
        tops[w] = seq
        -- At once, not at the end: another writer index of this call may hold the same generation.
        if run ~= '' then redis.call('HSET', meta, 'top', seq) end
        redis.call(publish, ARGV[i + 3], event)
      end
      if code == 1 and ARGV[i + 5] ~= '' then renew[w] = ARGV[i + 5] end
    end
  end
  results[#results + 1] = code
end
for w, ttl in pairs(renew) do
  redis.call('EXPIRE', KEYS[3 * w - 2], ttl)
end
return results
`;

/**
 * Record a new generation's meta (the api, at admission).
 * KEYS: 1 meta hash
 * ARGV: 1 status if none yet ('queued'), then field, value pairs
 * The meta of an unfinished generation has no TTL, so it outlives any wait in the queue or for a
 * model slot (a hash that expired there would come back without its tenant, and the owner would get
 * 404); the terminal event gives it the finished TTL. A worker may have written first: its status
 * stays, and so does the TTL of a generation that already ended. Nothing leaks: every generation is
 * tracked from before this write until its terminal event, and the reaper ends one whose job is gone.
 */
export const CREATE_META_LUA = `
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('HSETNX', KEYS[1], 'status', ARGV[1])
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' or status == 'running' then redis.call('PERSIST', KEYS[1]) end
return 1
`;

/**
 * The pre-flight of a job, before it may reach a provider: one step, so a re-delivered,
 * ended or cancelled job is a no-op and two runs of one job cannot both believe they own it.
 * KEYS: 1 terminal marker, 2 cancel request, 3 meta hash, 4 event log
 * ARGV: 1 this run's token, 2 now (ms), 3 ttl seconds
 * Returns -1 when the generation already ended (nothing to do), -2 when a cancel was requested
 * (the caller writes `cancelled`), else marks it running, owned by this run, and returns the
 * log's top seq (0 when empty), also kept as meta's `top` for the run's appends (APPEND_EVENT_LUA).
 * Appends and the terminal event of an older run are refused from here on.
 * Meta keeps no TTL while the generation runs (CREATE_META_LUA); only a hash this script creates (its
 * job ran before the api's meta write landed) gets `ttl`, which that write then removes, so a job
 * without any api-side meta cannot leave a hash behind for ever.
 */
export const CLAIM_RUN_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
local fresh = redis.call('EXISTS', KEYS[3]) == 0
local top = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
local topSeq = 0
if #top > 0 then topSeq = tonumber(string.match(top[1][1], '^(%d+)')) end
redis.call('HSET', KEYS[3], 'status', 'running', 'startedAt', ARGV[2], 'run', ARGV[1], 'top', topSeq)
if fresh then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
return topSeq
`;

/**
 * Append the terminal event, at most once per generation.
 * KEYS: 1 event log, 2 terminal marker, 3 meta hash
 * ARGV: 1 generation id, 2 event body JSON (an object without jobId/seq),
 *       3 live channel, 4 max events, 5 the finished generation's ttl seconds, 6 final status, 7 now (ms),
 *       8 this write's own token (the marker's value), 9 the writing run's token ('' for a writer
 *       that claimed no run: a cancel before start, a reaper), 10 `SPUBLISH` for a sharded
 *       live channel, otherwise PUBLISH
 * Returns the terminal event's seq, or 0 when another write ended the generation or another run
 * has claimed it. The same
 * write sent again (ioredis resends a command whose reply a dropped connection lost) finds its
 * own token in the marker and gets its seq again, so its caller still books the ending.
 * Meta gets the final status only if it exists: a hash recreated here would have no tenant, and
 * the generation would read as unknown (404) to its owner.
 */
export const APPEND_TERMINAL_LUA = `
if (ARGV[9] or '') ~= '' and redis.call('HGET', KEYS[3], 'run') ~= ARGV[9] then return 0 end
if not redis.call('SET', KEYS[2], ARGV[8], 'NX', 'EX', ARGV[5]) then
  if redis.call('GET', KEYS[2]) ~= ARGV[8] then return 0 end
  local ended = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  return tonumber(string.match(ended[1][1], '^(%d+)'))
end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 1
if #top > 0 then seq = tonumber(string.match(top[1][1], '^(%d+)')) + 1 end
local event = '{"jobId":' .. cjson.encode(ARGV[1]) .. ',"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], seq .. '-0', 'e', event)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call(ARGV[10] == 'SPUBLISH' and 'SPUBLISH' or 'PUBLISH', ARGV[3], event)
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'status', ARGV[6], 'finishedAt', ARGV[7])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
return seq
`;

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
