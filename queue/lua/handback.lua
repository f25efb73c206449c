-- Gives a RUNNING job back to the queue with its account slot and upstream task kept, so the
-- next worker resumes polling the same upstream task (drain, or a lease found expired).
-- ARGV: P now id token(or '' to skip the check) reason [retry_at]
-- retry_at later than now: the job waits in `delayed` until then (reap.lua puts it back in
-- `ready`), so a worker that cannot run it (no key for its account) does not lease it again at
-- once; its slot stays held meanwhile, as its upstream task still runs.
local P, now, id, token, reason = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local retry_at = tonumber(ARGV[6] or '0') or 0
local j = read_job(P, id, {'token', 'worker'})
if not j or j.state ~= 'RUNNING' then
  return redis.error_reply('NOTRUNNING ' .. tostring(j and j.state))
end
if token ~= '' and j.token ~= token then return redis.error_reply('LEASELOST') end
local ctx = new_ctx(P, now, ARGV[2])
-- What the worker recorded (held table, common_held.lua: create intent, upstream id, history) goes
-- into the record for the next lease.
held_take(j, held_entry(P, j))
transition(ctx, j, 'DISPATCHED', '', reason, {'token', '', 'worker', ''})
if j.worker and j.worker ~= '' then redis.call('HDEL', P .. ':wjobs:' .. j.worker, id) end
if retry_at > now then
  redis.call('ZADD', P .. ':delayed', retry_at, id)
else
  ready_again(P, {id})
end
flush(ctx)
return 'OK'
