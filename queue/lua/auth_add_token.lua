-- Adds a token (by its hash) to a tenant; with a replaced id, removes that token in the same
-- step, so a rotation never leaves both or neither.
-- ARGV: P tenant hash id now_ms replaces_id
local P, tenant, hash, id, now, old = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('SISMEMBER', P .. ':auth:tenants', tenant) == 0 then
  return redis.error_reply('NOTENANT')
end
local tokens = P .. ':auth:tokens:' .. tenant
if old ~= '' then
  local entry = redis.call('HGET', tokens, old)
  if not entry then return redis.error_reply('NOTOKEN') end
  redis.call('DEL', P .. ':auth:token:' .. string.match(entry, '^%S+'))
  redis.call('HDEL', tokens, old)
end
redis.call('HSET', P .. ':auth:token:' .. hash, 'tenant', tenant, 'id', id)
redis.call('HSET', tokens, id, hash .. ' ' .. now)
return 'OK'
