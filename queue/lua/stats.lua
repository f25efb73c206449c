-- Live view for ListModels / GetStats. ARGV: P now
-- Returns {accounts: {id, fields...}, models: {id, fields...}, tenants: {tenant, pending,
-- vt}, totals: {ready, leases, delayed, workers_seen}}.
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
local workers = 0
for _, v in ipairs(redis.call('HVALS', P .. ':workers')) do
  if tonumber(v) and tonumber(v) > now - 30000 then workers = workers + 1 end
end
return {accounts, models, tenants,
        {redis.call('LLEN', P .. ':ready'), redis.call('ZCARD', P .. ':leases'),
         redis.call('ZCARD', P .. ':delayed'), workers}}
