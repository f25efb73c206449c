-- Housekeeping, safe to run from every scheduler: leases that expired are handed back (the next
-- worker resumes the same upstream task); retries whose backoff is over become PENDING again.
-- ARGV: P now max
-- Returns {expired_leases, requeued_retries}.
local P, now, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', now, 'LIMIT', 0, max)
for _, id in ipairs(expired) do
  local j = jkey(P, id)
  if redis.call('HGET', j, 'state') == 'RUNNING' then
    transition(P, id, now, 'RUNNING', 'DISPATCHED', '', 'lease expired',
               {'token', '', 'worker', ''})
    redis.call('LPUSH', P .. ':ready', id)
  end
  redis.call('ZREM', P .. ':leases', id)
end
if #expired > 0 then
  redis.call('LPUSH', P .. ':wake', '1')
  redis.call('LTRIM', P .. ':wake', 0, 63)
end
local due = redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', now, 'LIMIT', 0, max)
local vt = redis.call('HGET', P .. ':meta', 'vt') or 0
for _, id in ipairs(due) do
  local j = jkey(P, id)
  local h = redis.call('HMGET', j, 'state', 'tenant', 'score')
  if h[1] == 'PENDING' then
    redis.call('ZADD', P .. ':pending:' .. h[2], h[3], id)
    redis.call('ZADD', P .. ':active', 'NX', vt, h[2])
  end
  redis.call('ZREM', P .. ':delayed', id)
end
return {#expired, #due}
