-- Renews a worker's one lease, which covers every job it holds: a job waiting minutes on its
-- provider costs nothing here. Also hands the worker the jobs cancelled while it held them
-- (cancel.lua adds them to its list; its cancel listener usually has them first) and takes off
-- that list the ones it acknowledges, those it has stopped: an id stays until acknowledged, so
-- an answer lost on the way loses no cancellation.
-- ARGV: P now lease_ms worker epoch (0: not checked), then the acknowledged ids
-- Returns {'OK', cancelled ids not acknowledged...}, or {'LOST'} when the lease lapsed and the
-- reaper handed the worker's jobs on (or another incarnation registered): the worker stops them
-- all and registers again.
local P, now, lease_ms, worker, epoch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4],
                                        ARGV[5]
local current = redis.call('HGET', P .. ':wepoch', worker)
if not current or (epoch ~= '0' and current ~= epoch) then return {'LOST'} end
redis.call('ZADD', P .. ':wlease', now + lease_ms, worker)
local out = {'OK'}
local list = P .. ':wcancel:' .. worker
for i = 6, #ARGV do redis.call('LREM', list, 0, ARGV[i]) end
local cancelled = redis.call('LRANGE', list, 0, 999)
for _, id in ipairs(cancelled) do out[#out + 1] = id end
return out
