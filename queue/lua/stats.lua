-- Live view for ListModels / GetStats. ARGV: P now
-- Returns {accounts: {id, fields...}, models: {id, fields...}, tenants: {tenant, pending,
-- vt}, totals: {ready, held by live workers, delayed, live workers}}.
local P, now = ARGV[1], tonumber(ARGV[2])
local accounts = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. ':accounts')) do
  accounts[#accounts + 1] = {id, redis.call('HGETALL', P .. ':acct:' .. id)}
end
local models = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. ':models')) do
  models[#models + 1] = {id, redis.call('HGETALL', P .. ':model:' .. id)}
end
local tenants = {}
local active = redis.call('ZRANGE', P .. ':active', 0, -1)
for _, t in ipairs(active) do
  tenants[#tenants + 1] = {t, redis.call('ZCARD', P .. ':pending:' .. t)}
end
-- Workers whose lease is current, and the jobs they hold.
local workers = redis.call('ZRANGEBYSCORE', P .. ':wlease', now, '+inf')
local leased = 0
for _, w in ipairs(workers) do leased = leased + redis.call('SCARD', P .. ':wjobs:' .. w) end
return {accounts, models, tenants,
        {redis.call('LLEN', P .. ':ready'), leased, redis.call('ZCARD', P .. ':delayed'),
         #workers}}
