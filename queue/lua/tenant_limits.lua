-- Sets a tenant's submit limits (0: none), kept with the tenant; submit.lua reads them.
-- ARGV: P tenant max_queued max_in_flight
local P, tenant = ARGV[1], ARGV[2]
if redis.call('SISMEMBER', P .. ':auth:tenants', tenant) == 0 then
  return redis.error_reply('NOTENANT')
end
redis.call('HSET', P .. ':auth:tenant:' .. tenant, 'max_queued', ARGV[3], 'max_in_flight', ARGV[4])
return 'OK'
