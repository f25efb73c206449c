-- Republishes every tenant's admin-set weight into the weights hash (after a scheduler start
-- wrote the configured ones).
-- ARGV: P
local P = ARGV[1]
for _, name in ipairs(redis.call('SMEMBERS', P .. ':auth:tenants')) do
  local w = tonumber(redis.call('HGET', P .. ':auth:tenant:' .. name, 'weight') or '0') or 0
  if w > 0 then redis.call('HSET', P .. ':weights', name, w) end
end
return 'OK'
