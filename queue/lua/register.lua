-- A worker starts (or starts over after losing its lease): it gets a new epoch and a lease of
-- its own, renewed by heartbeat.lua; every job it leases is held under that one lease (issue 11:
-- heartbeats per worker, not per job). Jobs an earlier incarnation of the same worker id still
-- held are handed back at once: nobody drives them any more.
-- ARGV: P now worker lease_ms
-- Returns the new epoch.
local P, now, worker, lease_ms = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local ctx = new_ctx(P, now, ARGV[2])
local back = {}
hand_back_held(ctx, worker, 'worker restarted', back)
ready_again(P, back)
local epoch = redis.call('INCR', P .. ':epoch')
redis.call('HSET', P .. ':wepoch', worker, epoch)
redis.call('ZADD', P .. ':wlease', now + lease_ms, worker)
flush(ctx)
return epoch
