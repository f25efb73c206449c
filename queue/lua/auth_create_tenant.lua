-- Creates a tenant (and publishes its dispatch weight when one is given).
-- ARGV: P name weight now_ms
local P, name, weight, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('SADD', P .. ':auth:tenants', name) == 0 then
  return redis.error_reply('EXISTS')
end
redis.call('HSET', P .. ':auth:tenant:' .. name, 'created_ms', now, 'weight', weight)
if tonumber(weight) > 0 then redis.call('HSET', P .. ':weights', name, weight) end
return 'OK'
