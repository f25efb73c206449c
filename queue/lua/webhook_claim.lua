-- A deliverer takes up to `limit` due deliveries. Each is leased by pushing its due time
-- `lease_ms` ahead: no other deliverer sends it meanwhile, and if this one dies it is due again
-- when the lease runs out. Every claim counts as an attempt (it may have been sent).
-- Fairness between tenants: one deliverer sends at most `per_tenant` deliveries of a tenant at
-- once (`busy`: what it has in flight per tenant now). A due delivery of a tenant at its cap is
-- not claimed (no attempt counted, nothing leased): it stays due and the deliveries behind it
-- are taken instead, so one tenant's slow or silent receiver cannot hold every slot. At most
-- `scan` due deliveries are looked at; when that many were and room is left, the ones passed
-- over are made due `defer_ms` later (no attempt counted) so that the next call reaches the
-- deliveries behind them, and the reply asks to be called again at once.
-- ARGV: P now lease_ms limit per_tenant defer_ms scan [tenant in_flight]...
-- Returns: more (1: call again at once), then per delivery: id url tenant body attempts created
local P, now, lease, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local per_tenant, defer, scan = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local busy = {}
for i = 8, #ARGV - 1, 2 do busy[ARGV[i]] = tonumber(ARGV[i + 1]) or 0 end
local due = P .. ':whdue'
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, scan)
local out = {0}
local claimed = 0
local passed = {}
for _, id in ipairs(ids) do
  if claimed >= limit then break end
  local key = P .. ':wh:' .. id
  local r = redis.call('HMGET', key, 'url', 'tenant', 'body', 'attempts', 'created', 'state')
  if not r[1] or r[6] ~= 'pending' then
    redis.call('ZREM', due, id)
  else
    local tenant = r[2] or ''
    local n = busy[tenant] or 0
    if n >= per_tenant then
      passed[#passed + 1] = id
    else
      busy[tenant] = n + 1
      claimed = claimed + 1
      local attempts = (tonumber(r[4]) or 0) + 1
      redis.call('ZADD', due, now + lease, id)
      redis.call('HSET', key, 'attempts', attempts, 'next_at', now + lease)
      for _, v in ipairs({id, r[1], tenant, r[3] or '', attempts, r[5] or now}) do
        out[#out + 1] = v
      end
    end
  end
end
if #ids == scan and claimed < limit and #passed > 0 then
  for _, id in ipairs(passed) do
    redis.call('ZADD', due, now + defer, id)
    redis.call('HSET', P .. ':wh:' .. id, 'next_at', now + defer)
  end
  out[1] = 1
end
return out
