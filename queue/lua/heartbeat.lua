-- Renews a worker's one lease, which covers every job it holds: a job waiting minutes on its
-- provider costs nothing here. Also hands the worker the jobs cancelled while it held them
-- (cancel.lua adds them to its list; its cancel listener usually has them first) and takes off
-- that list the ones it acknowledges, those it has stopped: an id stays until acknowledged, so
-- an answer lost on the way loses no cancellation.
-- The worker also says how many jobs it runs: when Redis holds more under it (held table, less
-- what dispatch pushed that it has not fetched yet), some were leased by an answer it never got,
-- or Redis went back in time (a failover to a replica that had not seen the worker's later
-- writes) and holds jobs the worker already finished. Nobody would drive those while its lease
-- lives: the reply says MORE, and the worker's next lease call names what it runs, handing back
-- the rest (lease.lua).
-- ARGV: P now lease_ms worker epoch (0: not checked) running ('': not compared), then the
-- acknowledged ids
-- Returns {'OK' or 'MORE', cancelled ids not acknowledged...}, or {'LOST'} when the lease lapsed
-- and the reaper handed the worker's jobs on (or another incarnation registered): the worker
-- stops them all and registers again.
local P, now, lease_ms, worker, epoch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4],
                                        ARGV[5]
local current = redis.call('HGET', P .. ':wepoch', worker)
if not current or (epoch ~= '0' and current ~= epoch) then return {'LOST'} end
redis.call('ZADD', P .. ':wlease', now + lease_ms, worker)
local out = {'OK'}
local running = tonumber(ARGV[6] or '')
if running then
  local held_key = P .. ':wjobs:' .. worker
  local held = redis.call('HLEN', held_key) - redis.call('HEXISTS', held_key, HELD_PAD) -
                   redis.call('LLEN', P .. ':wgot:' .. worker)
  if held > running then out[1] = 'MORE' end
end
local list = P .. ':wcancel:' .. worker
for i = 7, #ARGV do redis.call('LREM', list, 0, ARGV[i]) end
local cancelled = redis.call('LRANGE', list, 0, 999)
for _, id in ipairs(cancelled) do out[#out + 1] = id end
return out
