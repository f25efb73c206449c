-- Live view for ListModels / GetStats. ARGV: P now
-- Returns {accounts, models, tenants, totals}, every number as a string (Lua numbers would
-- reach the client truncated to integers):
--   account: {id, provider, rpm, effective_rpm, max_concurrent, in_flight, daily_cap,
--             used_today, cooldown_until, rate_limited, polls_per_minute, effective_conc}
--   model:   {id, lat, succeeded, failed, q_pending, q_dispatched, q_running}
--   tenant:  {tenant, pending, weight ('' when the weights hash has none)}; totals: {ready, jobs held by live workers, delayed, live
--            workers}
-- Derived numbers use the same rules as dispatch.lua: effective_rpm and effective_conc
-- (common.lua), and the day's usage counts only on the day dispatch last wrote it.
local P, now = ARGV[1], tonumber(ARGV[2])
local day = math.floor(now / 86400000)
-- Stored strings pass through as written; computed numbers in full precision.
local function num(v)
  if type(v) == 'number' then return string.format('%.17g', v) end
  if tonumber(v) then return v end
  return '0'
end
local accounts = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. ':accounts')) do
  local h = redis.call('HMGET', P .. ':acct:' .. id, 'provider', 'rpm', 'max_concurrent',
                       'in_flight', 'daily_cap', 'day', 'used_today', 'cooldown_until',
                       'rate_limited', 'ppm', 'learned_rpm', 'learned_at', 'learned_conc',
                       'learned_conc_at')
  local rpm = tonumber(h[2]) or 0
  local used = h[7]
  if tonumber(h[6]) ~= day then used = 0 end
  accounts[#accounts + 1] = {id, h[1] or '', num(rpm),
                             num(effective_rpm(rpm, tonumber(h[11]), tonumber(h[12]), now)),
                             num(h[3]), num(h[4]), num(h[5]), num(used), num(h[8]), num(h[9]),
                             num(h[10]),
                             num(effective_conc(tonumber(h[3]) or 0, tonumber(h[13]),
                                                tonumber(h[14]), now))}
end
local models = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. ':models')) do
  local h = redis.call('HMGET', P .. ':model:' .. id, 'lat', 'succeeded', 'failed', 'q_pending',
                       'q_dispatched', 'q_running')
  models[#models + 1] = {id, num(h[1]), num(h[2]), num(h[3]), num(h[4]), num(h[5]), num(h[6])}
end
local tenants = {}
local active = redis.call('ZRANGE', P .. ':active', 0, -1)
for _, t in ipairs(active) do
  -- The weight dispatch reads (an admin's SetWeight, else the configured one): '' for the default.
  tenants[#tenants + 1] = {t, redis.call('ZCARD', P .. ':pending:' .. t),
                           redis.call('HGET', P .. ':weights', t) or ''}
end
-- Workers whose lease is current, and the jobs they hold.
local workers = redis.call('ZRANGEBYSCORE', P .. ':wlease', now, '+inf')
local leased = 0
for _, w in ipairs(workers) do
  local held = P .. ':wjobs:' .. w
  leased = leased + redis.call('HLEN', held) - redis.call('HEXISTS', held, HELD_PAD)
end
return {accounts, models, tenants,
        {redis.call('LLEN', P .. ':ready'), leased, redis.call('ZCARD', P .. ':delayed'),
         #workers}}
