-- Sets a tenant's dispatch weight: kept with the tenant (it outlives a scheduler restart, which
-- republishes the configured weights) and published to the weights hash dispatch reads.
-- ARGV: P tenant weight
local P, tenant, weight = ARGV[1], ARGV[2], ARGV[3]
if redis.call('SISMEMBER', P .. ':auth:tenants', tenant) == 0 then
  return redis.error_reply('NOTENANT')
end
redis.call('HSET', P .. ':auth:tenant:' .. tenant, 'weight', weight)
redis.call('HSET', P .. ':weights', tenant, weight)
return 'OK'
