-- Renews the leases a worker still holds. ARGV: P now lease_ms worker id1 token1 id2 token2 ...
-- Returns {id, state} for every job the worker must stop: cancelled, or leased to another.
local P, now, lease_ms, worker = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local lost = {}
for i = 5, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local h = redis.call('HMGET', jkey(P, id), 'state', 'token')
  if h[1] == 'RUNNING' and h[2] == token then
    redis.call('ZADD', P .. ':leases', 'XX', now + lease_ms, id)
  else
    lost[#lost + 1] = id
    lost[#lost + 1] = h[1] or 'GONE'
  end
end
redis.call('HSET', P .. ':workers', worker, now)
return lost
