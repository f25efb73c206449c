-- Lets one upstream create call go now, or says how long to wait. The dispatch bucket shapes
-- the create rate, but a dispatched job reaches the provider a variable time later (lease,
-- worker start-up, network), which can squeeze rpm + 1 creates into some 60 s window as the
-- provider counts it. This exact sliding-window log, taken right before the call, closes that
-- gap: no window of 60 s + `guard_ms` ever holds more than the account's rate (its learned
-- lower rate after a 429). A create is logged at the time it was let go, and moved to the time
-- its answer came back (phase.lua, fail.lua: `settle_create`); the provider received it between
-- the two, so a new create let go a window after every logged answer cannot meet an old one in
-- any window the provider counts, however long the calls took. Fenced by the lease token, so a
-- worker that lost the job cannot create for it.
-- ARGV: P now id token guard_ms
-- Returns 0 (the create may go; it is recorded) or the milliseconds to wait.
local P, now, id, token, guard = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local h = redis.call('HMGET', jkey(P, id), 'state', 'token', 'account')
if h[1] ~= 'RUNNING' then return redis.error_reply('NOTRUNNING ' .. tostring(h[1])) end
if h[2] ~= token then return redis.error_reply('LEASELOST') end
if not h[3] or h[3] == '' then return 0 end
local a = P .. ':acct:' .. h[3]
local r = redis.call('HMGET', a, 'rpm', 'learned_rpm', 'learned_at')
local rpm = tonumber(r[1]) or 0
if rpm <= 0 then return 0 end  -- no create quota on this account
local limit = math.max(1, math.floor(effective_rpm(rpm, tonumber(r[2]), tonumber(r[3]), now)))
local window = 60000 + guard
local log = a .. ':creates'
redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
local n = redis.call('ZCARD', log)
if n >= limit then
  -- The call may go once the (n - limit + 1)-th oldest create leaves the window.
  local oldest = redis.call('ZRANGE', log, n - limit, n - limit, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now + 1)
end
local member = id .. ':' .. now
redis.call('ZADD', log, now, member)
redis.call('PEXPIRE', log, window * 2)
redis.call('HSET', jkey(P, id), 'create_log', member)
return 0
