-- A deliverer takes up to `limit` due deliveries. Each is leased by pushing its due time
-- `lease_ms` ahead: no other deliverer sends it meanwhile, and if this one dies it is due again
-- when the lease runs out. Every claim counts as an attempt (it may have been sent).
-- ARGV: P now lease_ms limit
-- Returns per delivery: id url tenant body attempts created
local P, now, lease, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local due = P .. ':whdue'
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)
local out = {}
for _, id in ipairs(ids) do
  local key = P .. ':wh:' .. id
  local r = redis.call('HMGET', key, 'url', 'tenant', 'body', 'attempts', 'created', 'state')
  if not r[1] or r[6] ~= 'pending' then
    redis.call('ZREM', due, id)
  else
    local attempts = (tonumber(r[4]) or 0) + 1
    redis.call('ZADD', due, now + lease, id)
    redis.call('HSET', key, 'attempts', attempts, 'next_at', now + lease)
    for _, v in ipairs({id, r[1], r[2] or '', r[3] or '', attempts, r[5] or now}) do
      out[#out + 1] = v
    end
  end
end
return out
