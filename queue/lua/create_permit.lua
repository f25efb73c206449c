-- Lets upstream create calls go now, or says how long each must wait; many jobs per call (a
-- worker gathers the permits its jobs ask for within a few milliseconds). The dispatch bucket
-- shapes the create rate, but a dispatched job reaches the provider a variable time later
-- (lease, worker start-up, network), which can squeeze rpm + 1 creates into some 60 s window as
-- the provider counts it. This exact sliding-window log, taken right before the call, closes
-- that gap: no window of 60 s + `guard_ms` ever holds more than the account's rate (its learned
-- lower rate after a 429). A create is logged at the time it was let go, and moved to the time
-- its answer came back (phase.lua, fail.lua: `settle_create`); the provider received it between
-- the two, so a new create let go a window after every logged answer cannot meet an old one in
-- any window the provider counts, however long the calls took. Fenced by the lease token (the
-- worker's held table, common_held.lua), so a worker that lost the job cannot create for it.
-- When a create may go, the job's create intent is recorded in the same step: if the worker
-- dies or the answer is lost, the next lease looks the task up instead of paying for a second
-- one (the worker's lost-create path). Not a transition: no history or event, since this is on
-- every job's path. phase.lua clears it when the upstream id is stored; fail.lua and retry.lua
-- when the attempt ends.
-- ARGV: P now guard_ms n, then per job: k followed by k names and values (id token intent,
-- intent being "<sent_ms>:<attempt>").
-- Returns per job 0 (the create may go; it is recorded), the milliseconds to wait (for the rate,
-- or until the account's cooldown_until passes), or the refusal ('LEASELOST',
-- 'NOTRUNNING <state>').
local P, now, guard, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now_s = ARGV[2]  -- as text once: Lua formats a number for every concatenation
local window = 60000 + guard
local accounts = {}  -- id -> {limit, count, log, added = {member, ...}, entries, cooldown}
local function account(id)
  local a = accounts[id]
  if a then return a end
  local key = P .. ':acct:' .. id
  local r = redis.call('HMGET', key, 'rpm', 'learned_rpm', 'learned_at', 'cooldown_until')
  local rpm = tonumber(r[1]) or 0
  a = {log = key .. ':creates', added = {}, limit = 0, count = 0, cooldown = tonumber(r[4]) or 0}
  if rpm > 0 then
    a.limit = math.max(1, math.floor(effective_rpm(rpm, tonumber(r[2]), tonumber(r[3]), now)))
    redis.call('ZREMRANGEBYSCORE', a.log, '-inf', now - window)
    a.count = redis.call('ZCARD', a.log)
  end
  accounts[id] = a
  return a
end
-- How long until the create may go: once the (count - limit + 1)-th oldest create leaves the
-- window (the ones let go in this call are the newest, at `now`).
local function wait_for(a)
  if not a.entries then
    a.entries = {}
    local r = redis.call('ZRANGE', a.log, 0, -1, 'WITHSCORES')
    for x = 2, #r, 2 do a.entries[#a.entries + 1] = tonumber(r[x]) end
  end
  local at = a.entries[a.count - a.limit + 1] or now
  return math.max(1, at + window - now + 1)
end
local reqs = {}
local i = 5
for _ = 1, n do
  local k = tonumber(ARGV[i]); i = i + 1
  local f = {id = false, token = false, intent = false}  -- sized once for its names
  for x = i, i + 2 * k - 1, 2 do f[ARGV[x]] = ARGV[x + 1] end
  i = i + 2 * k
  reqs[#reqs + 1] = f
end
-- Fenced by the worker's held table (common_held.lua, held_jobs): no read of the job's record.
local jobs = held_jobs(P, reqs, {'token', 'account', 'create_log', 'worker', 'create_intent'},
                      'head')
local out = {}
for x, f in ipairs(reqs) do
  local j = jobs[x]
  if type(j) ~= 'table' then
    out[#out + 1] = j
  else
    local member = ''
    local wait = 0
    if j.account and j.account ~= '' then
      local a = account(j.account)
      if a.cooldown > now then
        -- The account was cooled (fail.lua: a 429, an auth failure, server errors) after this
        -- job was dispatched to it: a create now would be refused upstream and spend an
        -- attempt. It waits out the cooldown like a create waits for the rate.
        wait = a.cooldown - now
      elseif a.limit > 0 then
        if a.count >= a.limit then
          wait = wait_for(a)
        else
          member = f.id .. ':' .. now_s
          a.added[#a.added + 1] = now_s
          a.added[#a.added + 1] = member
          a.count = a.count + 1
        end
      end
    end
    if wait == 0 then
      -- Kept in the worker's held table (common_held.lua), which the scripts that take the job
      -- from the worker copy into the record: one HSET per call, not one per job.
      if j.held then
        j.create_intent, j.create_log, j.held_dirty = f.intent, member, true
      else
        redis.call('HSET', jkey(P, f.id), 'create_intent', f.intent, 'create_log', member)
      end
    end
    out[#out + 1] = wait
  end
end
held_save(P, jobs)
for _, a in pairs(accounts) do
  if #a.added > 0 then
    redis.call('ZADD', a.log, unpack(a.added))
    redis.call('PEXPIRE', a.log, window * 2)
  end
end
return out
