/**
 * The fleet's shared state changes only through these scripts, so every worker
 * routes as one router: reading loads and the prefix index, choosing, and booking
 * the in-flight count happen in one atomic step (no read-then-write race between
 * workers). Key order is `FLEET_KEY_PARTS`; all keys share the model's hash tag.
 */
export const FLEET_KEY_PARTS = ['state', 'until', 'failures', 'inflight', 'leases', 'prefix', 'prefix-expiry', 'cursor', 'signals', 'between-turns', 'between-turns-expiry', 'between-turns-count', 'load-average'] as const;

/**
 * Time constant of each replica's average load (in flight + between turns), which `loadRatio` compares:
 * long enough that a replica whose requests all ended a moment ago does not look idle, short enough
 * that a replica left with fewer conversations is seen within a few turns.
 */
const LOAD_AVERAGE_MS = 2_000;

/**
 * `settle(replica)`: folds the replica's load since its last settle into its average (call it before
 * the load changes; needs `now`). Returns the average.
 */
const SETTLE_LUA = `
local function settle(replica)
  local load = math.max(0, tonumber(redis.call('HGET', KEYS[4], replica)) or 0) + math.max(0, tonumber(redis.call('HGET', KEYS[12], replica)) or 0)
  local average, since = load, now
  local raw = redis.call('HGET', KEYS[13], replica)
  if raw then
    local a, t = string.match(raw, '^([^:]+):(%d+)$')
    if a then average, since = tonumber(a), tonumber(t) end
  end
  local weight = math.exp(-math.max(0, now - since) / ${LOAD_AVERAGE_MS})
  average = average * weight + load * (1 - weight)
  redis.call('HSET', KEYS[13], replica, string.format('%.4f:%d', average, now))
  return average
end
`;

/**
 * Drops expired leases (a dead worker's in-flight), expired prefix entries and conversations whose
 * next turn did not come (see RELEASE_LUA), a bounded number per call.
 */
const EXPIRE_LUA = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 100)
for _, member in ipairs(expired) do
  local replica = string.match(member, '^(.-)\\n')
  redis.call('ZREM', KEYS[5], member)
  if replica then
    settle(replica)
    if redis.call('HINCRBY', KEYS[4], replica, -1) < 0 then redis.call('HSET', KEYS[4], replica, 0) end
  end
end
local old = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now, 'LIMIT', 0, 200)
if #old > 0 then
  redis.call('HDEL', KEYS[6], unpack(old))
  redis.call('ZREM', KEYS[7], unpack(old))
end
local idle = redis.call('ZRANGEBYSCORE', KEYS[11], '-inf', now, 'LIMIT', 0, 100)
for _, member in ipairs(idle) do
  local replica, chunk = string.match(member, '^(.-)\\n(.*)$')
  redis.call('ZREM', KEYS[11], member)
  if replica then
    settle(replica)
    if redis.call('HINCRBY', KEYS[12], replica, -1) < 0 then redis.call('HSET', KEYS[12], replica, 0) end
    if redis.call('HGET', KEYS[10], chunk) == replica then redis.call('HDEL', KEYS[10], chunk) end
  end
end
`;

/**
 * ARGV: now. The expiry alone, for the workers' periodic sweep: without it a dead worker's lease
 * (and old prefix entries) would go only at the model's next pick, and /readyz would show the dead
 * worker's in-flight count for as long as the model gets no traffic. Returns 1 when a call may have
 * left more (a batch limit was reached).
 */
export const EXPIRE_ONLY_LUA = `
local now = tonumber(ARGV[1])
${SETTLE_LUA}
${EXPIRE_LUA}
if #expired == 100 or #old == 200 or #idle == 100 then return 1 end
return 0
`;

/**
 * ARGV: now, strategy, leaseId, leaseMs, trialMs, loadMargin, minMatchChunks, prefixTtlMs, random (0..1),
 * loadRatio, n, then n × (replica, weight, maxConcurrency or 0), then x, x excluded replicas, then
 * session hash or '', then c, c chained chunk hashes (shortest prefix first).
 * A replica's load is its in-flight count, plus the conversations whose turn ended there moments ago
 * and whose next turn is expected (`between-turns`, see RELEASE_LUA), plus the extra load its own
 * metrics report (`signals`, while fresh); `maxConcurrency` caps the in-flight count alone.
 * Prefix-affinity passes over the replica a request would stick to when its load (without the request)
 * exceeds the least loaded's by more than loadMargin, or, with loadRatio > 0, when moving the request
 * would narrow the gap (its load with the request is at least the least loaded's + 2) and that load is
 * above loadRatio × the least loaded's: an absolute margin alone lets a replica run 3 while another
 * idles, for as long as their conversations last.
 * Returns {status, replica, reason, matchedChunks, inFlight (after), fleetMin (whole part), waitMs}:
 * status `picked`; `wait` (some replica is backing off or full: ask again after waitMs, -1 unknown);
 * `exhausted` (no untried replica can take work).
 */
export const PICK_LUA = `
local now = tonumber(ARGV[1])
${SETTLE_LUA}
local strategy = ARGV[2]
local n = tonumber(ARGV[11])
local i = 12
local ids, weights, caps = {}, {}, {}
for k = 1, n do
  ids[k] = ARGV[i]; weights[k] = tonumber(ARGV[i + 1]); caps[k] = tonumber(ARGV[i + 2]); i = i + 3
end
local excluded = {}
local x = tonumber(ARGV[i]); i = i + 1
for k = 1, x do excluded[ARGV[i]] = true; i = i + 1 end
local session = ARGV[i]; i = i + 1
local c = tonumber(ARGV[i]); i = i + 1
local chunks = {}
for k = 1, c do chunks[k] = ARGV[i]; i = i + 1 end

-- Every replica's average is settled now, before this script changes any load.
local averages = {}
for k = 1, n do averages[k] = settle(ids[k]) end
${EXPIRE_LUA}

-- This conversation's previous turn, if it ended moments ago, still counts on its replica; this
-- request takes its place (and goes there when no longer prefix says otherwise).
local previous = nil
if strategy == 'prefix-affinity' and c > 0 then
  local owners = redis.call('HMGET', KEYS[10], unpack(chunks))
  for j = c, 1, -1 do
    local owner = owners[j]
    if owner then
      redis.call('HDEL', KEYS[10], chunks[j])
      if redis.call('ZREM', KEYS[11], owner .. '\\n' .. chunks[j]) == 1 then
        if redis.call('HINCRBY', KEYS[12], owner, -1) < 0 then redis.call('HSET', KEYS[12], owner, 0) end
        previous = owner
      end
      break
    end
  end
end

local states = redis.call('HMGET', KEYS[1], unpack(ids))
local untils = redis.call('HMGET', KEYS[2], unpack(ids))
local loadsRaw = redis.call('HMGET', KEYS[4], unpack(ids))
local signalsRaw = redis.call('HMGET', KEYS[9], unpack(ids))
local betweenRaw = redis.call('HMGET', KEYS[12], unpack(ids))
local inflight, loads, eligible, byId, trial = {}, {}, {}, {}, {}
local waitMs, untried, minLoad = -1, 0, nil
for k = 1, n do
  local state = states[k] or 'up'
  local untilMs = tonumber(untils[k]) or 0
  inflight[k] = math.max(0, tonumber(loadsRaw[k]) or 0)
  loads[k] = inflight[k] + math.max(0, tonumber(betweenRaw[k]) or 0)
  if signalsRaw[k] then
    local extra, expires = string.match(signalsRaw[k], '^([^:]+):(%d+)$')
    if expires and tonumber(expires) > now then loads[k] = loads[k] + math.max(0, tonumber(extra) or 0) end
  end
  local ok = not excluded[ids[k]]
  if ok and state == 'drained' then ok = false end
  if ok then
    untried = untried + 1
    if state ~= 'up' and untilMs > now then
      ok = false
      if waitMs < 0 or untilMs - now < waitMs then waitMs = untilMs - now end
    elseif state == 'ejected' then
      trial[k] = true
    end
  end
  if ok and caps[k] > 0 and inflight[k] >= caps[k] then ok = false end
  if ok then
    eligible[#eligible + 1] = k
    byId[ids[k]] = k
    if minLoad == nil or loads[k] < minLoad then minLoad = loads[k] end
  end
end
if #eligible == 0 then
  if untried == 0 then return {'exhausted', '', 'no untried replica is up', 0, 0, 0, -1} end
  return {'wait', '', 'every untried replica is backing off or full', 0, 0, 0, waitMs}
end

local function leastLoaded()
  -- Equal loads rotate, so least-outstanding does not pile onto the first replica listed; among them
  -- the replica of the conversation's previous turn wins (its cache has that turn).
  local start = redis.call('INCR', KEYS[8])
  local best = nil
  for j = 0, #eligible - 1 do
    local k = eligible[((start + j) % #eligible) + 1]
    if best == nil or loads[k] < loads[best] or (loads[k] == loads[best] and ids[k] == previous) then best = k end
  end
  return best
end

local pick, reason, matched = nil, '', 0
if strategy == 'round-robin' then
  pick = eligible[(redis.call('INCR', KEYS[8]) % #eligible) + 1]
  reason = 'round robin'
elseif strategy == 'weighted-random' then
  local total = 0
  for _, k in ipairs(eligible) do total = total + weights[k] end
  local r = tonumber(ARGV[9]) * total
  for _, k in ipairs(eligible) do
    pick = k
    r = r - weights[k]
    if r < 0 then break end
  end
  reason = 'weighted random'
elseif strategy == 'least-outstanding' then
  pick = leastLoaded()
  reason = 'least outstanding'
else
  local margin, ratio = tonumber(ARGV[6]), tonumber(ARGV[10])
  local minAverage = nil
  for _, k in ipairs(eligible) do
    if minAverage == nil or averages[k] < minAverage then minAverage = averages[k] end
  end
  local function overCap(k)
    if loads[k] > minLoad + margin then return true end
    -- Persistently above the least loaded (averages, at least one request apart), and moving narrows the gap now.
    return ratio > 0 and averages[k] >= minAverage + 1 and averages[k] > minAverage * ratio and loads[k] + 1 >= minLoad + 2
  end
  local minMatch = tonumber(ARGV[7])
  if session ~= '' then
    local owner = redis.call('HGET', KEYS[6], session)
    local k = owner and byId[owner]
    if k and not overCap(k) then
      pick, reason, matched = k, 'session key', -1
    elseif k then
      reason = 'session replica ' .. owner .. ' over load cap; '
    end
  end
  if not pick and c >= minMatch then
    local owners = redis.call('HMGET', KEYS[6], unpack(chunks))
    for j = c, minMatch, -1 do
      local k = owners[j] and byId[owners[j]]
      if k then
        if not overCap(k) then
          pick, matched = k, j
          reason = reason .. 'longest prefix match'
          break
        end
        reason = reason .. 'match of ' .. j .. ' chunks on ' .. owners[j] .. ' over load cap; '
      end
    end
  end
  -- A first turn shorter than the minimum match left no prefix entries, but its replica has its cache.
  if not pick and previous and byId[previous] then
    local k = byId[previous]
    if not overCap(k) then
      pick, reason = k, reason .. 'replica of the previous turn'
    else
      reason = reason .. "previous turn's replica " .. previous .. ' over load cap; '
    end
  end
  if not pick then
    pick = leastLoaded()
    reason = reason .. 'no usable prefix match: least outstanding'
  end
  local expiry = now + tonumber(ARGV[8])
  local fields, scores = {}, {}
  for j = math.max(1, minMatch), c do
    fields[#fields + 1] = chunks[j]; fields[#fields + 1] = ids[pick]
    scores[#scores + 1] = expiry; scores[#scores + 1] = chunks[j]
  end
  if session ~= '' then
    fields[#fields + 1] = session; fields[#fields + 1] = ids[pick]
    scores[#scores + 1] = expiry; scores[#scores + 1] = session
  end
  if #fields > 0 then
    redis.call('HSET', KEYS[6], unpack(fields))
    redis.call('ZADD', KEYS[7], unpack(scores))
  end
end

local replica = ids[pick]
local inFlight = redis.call('HINCRBY', KEYS[4], replica, 1)
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), replica .. '\\n' .. ARGV[3])
-- An ejected replica whose time is up gets this one request as its trial; nobody else until it ends.
if trial[pick] then
  redis.call('HSET', KEYS[2], replica, now + tonumber(ARGV[5]))
  reason = reason .. ' (re-admission trial)'
end
return {'picked', replica, reason, matched, inFlight, math.floor(minLoad), 0}
`;

/**
 * ARGV: replica, leaseId, chunk hash or '', now, turnGapMs. Frees the in-flight slot once, however
 * often it is called. With a chunk (the longest of a prefix-affinity request that completed), the
 * conversation keeps counting on the replica for turnGapMs: its next turn, whose prompt holds that
 * chunk, usually comes within milliseconds (a chat client, an agent loop), and a replica whose
 * conversations are all between turns is not idle. Without this, in-flight counts dip at every turn's
 * end and the least loaded replica is often only the one whose requests just ended. The next turn's
 * pick takes its place (PICK_LUA); a turn that does not come ends it after turnGapMs.
 */
export const RELEASE_LUA = `
local replica, chunk, now, gapMs = ARGV[1], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
${SETTLE_LUA}
if redis.call('ZREM', KEYS[5], replica .. '\\n' .. ARGV[2]) == 0 then return 0 end
settle(replica)
if redis.call('HINCRBY', KEYS[4], replica, -1) < 0 then redis.call('HSET', KEYS[4], replica, 0) end
if chunk ~= '' and gapMs > 0 then
  if redis.call('ZADD', KEYS[11], now + gapMs, replica .. '\\n' .. chunk) == 1 then
    redis.call('HINCRBY', KEYS[12], replica, 1)
  end
  redis.call('HSET', KEYS[10], chunk, replica)
end
return 1
`;

/**
 * ARGV: replica, outcome, now, ms, ejectAfterFailures. Outcomes:
 * `ok` resets failures and re-admits an ejected replica (its trial passed) or one whose back-off ended;
 * `busy` / `draining` back it off until now+ms (never shortening a longer back-off);
 * `failed` counts a failure and ejects it (for ms) at the threshold or when its trial failed;
 * `probe-failed` drains it until a probe passes; `probe-ok` ends such a drain.
 * Returns {state after, 1 if this call ejected it, 1 if this call drained it}.
 */
export const REPORT_LUA = `
local replica, outcome, now, ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HGET', KEYS[1], replica) or 'up'
local untilMs = tonumber(redis.call('HGET', KEYS[2], replica)) or 0
local function set(newState, newUntil)
  redis.call('HSET', KEYS[1], replica, newState)
  if newUntil then redis.call('HSET', KEYS[2], replica, newUntil) else redis.call('HDEL', KEYS[2], replica) end
  state = newState
end
local ejected, drained = 0, 0
if outcome == 'ok' then
  redis.call('HDEL', KEYS[3], replica)
  if state == 'ejected' or ((state == 'busy' or state == 'draining') and untilMs <= now) then set('up', nil) end
elseif outcome == 'busy' or outcome == 'draining' then
  if state ~= 'drained' and state ~= 'ejected' then set(outcome, math.max(untilMs, now + ms)) end
elseif outcome == 'failed' then
  local failures = redis.call('HINCRBY', KEYS[3], replica, 1)
  if state ~= 'drained' and (state == 'ejected' or failures >= tonumber(ARGV[5])) then
    set('ejected', now + ms)
    ejected = 1
  end
elseif outcome == 'probe-failed' then
  if state ~= 'drained' then
    set('drained', nil)
    drained = 1
  end
elseif outcome == 'probe-ok' then
  if state == 'drained' then set('up', nil) end
end
return {state, ejected, drained}
`;
