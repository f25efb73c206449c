-- Revokes one token of a tenant by its public id.
-- ARGV: P tenant id
local P, tenant, id = ARGV[1], ARGV[2], ARGV[3]
if redis.call('SISMEMBER', P .. ':auth:tenants', tenant) == 0 then
  return redis.error_reply('NOTENANT')
end
local tokens = P .. ':auth:tokens:' .. tenant
local entry = redis.call('HGET', tokens, id)
if not entry then return redis.error_reply('NOTOKEN') end
redis.call('DEL', P .. ':auth:token:' .. string.match(entry, '^%S+'))
redis.call('HDEL', tokens, id)
return 'OK'
