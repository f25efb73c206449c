-- Publishes the catalogue's models and accounts and the tenant weights (from a scheduler's
-- config) without touching live counters. Checks the schema version: a Redis of a version this
-- build reads is marked with the one it speaks (job_store.h, kSchemaVersion).
-- ARGV: P "<speaks>:<oldest read>" default_weight n_models {id accounts lat_seed lat_min lat_max price
--       prices_by_resolution}*n n_accounts {id provider rpm max_concurrent daily_cap
--       polls_per_minute bill_policy bill_failed}*n n_weights {tenant weight}*n
--       [activation_credit]
-- price: micro-dollars per second; prices_by_resolution: "720p=84000,1080p=112000" or ''.
local P = ARGV[1]
local schema, oldest = string.match(ARGV[2], '^(%d+):(%d+)$')
if not schema then return redis.error_reply('sync_config: bad schema argument ' .. ARGV[2]) end
local current = redis.call('HGET', P .. ':meta', 'schema')
if current and (tonumber(current) == nil or tonumber(current) < tonumber(oldest) or
    tonumber(current) > tonumber(schema)) then
  return redis.error_reply('SCHEMA stored ' .. current .. ', this build speaks ' .. schema)
end
redis.call('HSET', P .. ':meta', 'schema', schema, 'default_weight', ARGV[3])
local i = 4
local n = tonumber(ARGV[i]); i = i + 1
-- A model the config no longer names keeps its hash (its counters, jobs still pointing at it)
-- but loses its accounts: dispatch then routes its jobs to their other models, and fails one
-- left with no model that has an account, instead of sending it to an account nobody runs.
local dropped = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. ':models')) do dropped[id] = true end
redis.call('DEL', P .. ':models')
-- A price lowered (at any resolution) may let jobs parked for want of funds go (dispatch.lua):
-- each tenant that has some is marked to have them all put back in its queue, which dispatch
-- rounds do, UNPARK_MAX jobs a round (common_groups.lua, unpark); those still too dear park again.
-- All of them, not only those that may use a lowered model: which models a parked job may use is
-- in its record, not in any index this script could read without walking every parked job; a
-- reload that lowers a price is rare, and one parked again for the same need writes no transition
-- (dispatch.lua), so the cost is one read of each record, once.
local lowered = false
for _ = 1, n do
  local id, accounts, seed = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  dropped[id] = nil
  local mk = P .. ':model:' .. id
  local old_plain = tonumber(redis.call('HGET', mk, 'price') or '')
  local new_plain = tonumber(ARGV[i + 5]) or 0
  redis.call('HSET', mk, 'accounts', accounts, 'lat_min', ARGV[i + 3], 'lat_max', ARGV[i + 4],
             'price', ARGV[i + 5])
  -- Per-resolution prices are replaced whole: a resolution dropped from the config loses its.
  local old_res = {}
  for _, field in ipairs(redis.call('HKEYS', mk)) do
    if string.sub(field, 1, 6) == 'price:' then
      old_res[string.sub(field, 7)] = tonumber(redis.call('HGET', mk, field))
      redis.call('HDEL', mk, field)
    end
  end
  local new_res = {}
  for res, price in string.gmatch(ARGV[i + 6], '([^,=]+)=([^,]+)') do
    redis.call('HSET', mk, 'price:' .. res, price)
    new_res[res] = tonumber(price)
  end
  -- What a job at each resolution pays, before and after (common_groups.lua, model_price).
  if old_plain and new_plain < old_plain then lowered = true end
  for res, old in pairs(old_res) do
    if (new_res[res] or new_plain) < old then lowered = true end
  end
  for res, new in pairs(new_res) do
    if old_plain and not old_res[res] and new < old_plain then lowered = true end
  end
  i = i + 7
  redis.call('HSETNX', mk, 'lat', seed)
  redis.call('SADD', P .. ':models', id)
end
for id in pairs(dropped) do redis.call('HSET', P .. ':model:' .. id, 'accounts', '') end
n = tonumber(ARGV[i]); i = i + 1
redis.call('DEL', P .. ':accounts')
for _ = 1, n do
  local id = ARGV[i]
  redis.call('HSET', P .. ':acct:' .. id, 'provider', ARGV[i + 1], 'rpm', ARGV[i + 2],
             'max_concurrent', ARGV[i + 3], 'daily_cap', ARGV[i + 4], 'ppm', ARGV[i + 5],
             'bill_policy', ARGV[i + 6], 'bill_failed', ARGV[i + 7])
  redis.call('SADD', P .. ':accounts', id)
  i = i + 8
end
n = tonumber(ARGV[i]); i = i + 1
redis.call('DEL', P .. ':weights')
for _ = 1, n do
  redis.call('HSET', P .. ':weights', ARGV[i], ARGV[i + 1])
  i = i + 2
end
if lowered then
  local tenants = redis.call('SMEMBERS', P .. ':parked_t')
  for _, t in ipairs(tenants) do redis.call('HSET', P .. ':unpark', t, 'all') end
  if #tenants > 0 then
    redis.call('HSET', P .. ':meta', 'unpark', '1')
    if redis.call('LLEN', P .. ':dwake') == 0 then redis.call('LPUSH', P .. ':dwake', '1') end
  end
end
-- A build before the setting sends none: meta keeps what a newer scheduler set, or the default.
if ARGV[i] then redis.call('HSET', P .. ':meta', 'activation_credit', ARGV[i]) end
return 'OK'
