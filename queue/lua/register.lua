-- A worker starts (or starts over after losing its lease): it gets a new epoch and a lease of
-- its own, renewed by heartbeat.lua; every job it leases is held under that one lease (issue 11:
-- heartbeats per worker, not per job). Jobs an earlier incarnation of the same worker id still
-- held are handed back at once: nobody drives them any more.
-- ARGV: P now worker lease_ms
-- Returns the new epoch.
local P, now, worker, lease_ms = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local ctx = new_ctx(P, now)
local held = P .. ':wjobs:' .. worker
local back = {}
local entries = redis.call('HGETALL', held)
for x = 1, #entries, 2 do
  local id = entries[x]
  local j = read_job(P, id, {'worker', 'token'})
  if j and j.state == 'RUNNING' and j.worker == worker then
    -- What the worker recorded (held table, common_held.lua) goes into the record for the next lease.
    local h = held_decode(id, entries[x + 1], worker)
    if h.token ~= j.token then h = nil end
    held_take(j, h)
    transition(ctx, j, 'DISPATCHED', '', 'worker restarted', {'token', '', 'worker', ''})
    back[#back + 1] = id
  end
end
if #back > 0 then
  redis.call('LPUSH', P .. ':ready', unpack(back))
  redis.call('LPUSH', P .. ':wake', '1')
  redis.call('LTRIM', P .. ':wake', 0, 63)
end
-- Leases dispatch pushed to the earlier incarnation (common_lease.lua) are of jobs handed back.
redis.call('DEL', held, P .. ':wcancel:' .. worker, P .. ':wcnudge:' .. worker,
             P .. ':wgot:' .. worker,
             P .. ':wnudge:' .. worker)
redis.call('HDEL', P .. ':wwait', worker)
local epoch = redis.call('INCR', P .. ':epoch')
redis.call('HSET', P .. ':wepoch', worker, epoch)
redis.call('ZADD', P .. ':wlease', now + lease_ms, worker)
flush(ctx)
return epoch
