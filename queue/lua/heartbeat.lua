-- Renews a worker's one lease, which covers every job it holds: a job waiting minutes on its
-- provider costs nothing here. Also hands the worker the jobs cancelled meanwhile (cancel.lua
-- pushes them to its list; the worker's cancel listener usually has them first).
-- ARGV: P now lease_ms worker epoch (0: not checked)
-- Returns {'OK', cancelled ids...}, or {'LOST'} when the lease lapsed and the reaper handed the
-- worker's jobs on (or another incarnation registered): the worker stops them all and registers
-- again.
local P, now, lease_ms, worker, epoch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4],
                                        ARGV[5]
local current = redis.call('HGET', P .. ':wepoch', worker)
if not current or (epoch ~= '0' and current ~= epoch) then return {'LOST'} end
redis.call('ZADD', P .. ':wlease', now + lease_ms, worker)
local out = {'OK'}
local cancelled = redis.call('LPOP', P .. ':wcancel:' .. worker, 1000)
if cancelled then for _, id in ipairs(cancelled) do out[#out + 1] = id end end
return out
