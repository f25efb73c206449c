-- Housekeeping, safe to run from every scheduler: a worker whose lease lapsed loses every job it
-- held, each handed back (the next worker resumes the same upstream task; the cleared token
-- fences the old worker out); retries whose backoff is over become PENDING again.
-- ARGV: P now max
-- Returns {jobs_handed_back, requeued_retries}.
local P, now, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ctx = new_ctx(P, now)
local workers = redis.call('ZRANGEBYSCORE', P .. ':wlease', '-inf', now, 'LIMIT', 0, max)
local back = {}
for _, worker in ipairs(workers) do
  local held = P .. ':wjobs:' .. worker
  local entries = redis.call('HGETALL', held)
  for x = 1, #entries, 2 do
    local id = entries[x]
    local j = read_job(P, id, {'worker', 'token'})
    if j and j.state == 'RUNNING' and j.worker == worker then
      -- What the worker recorded (held table, common_held.lua: create intent, upstream id, history)
      -- goes into the record: the next lease recovers the upstream task instead of creating.
      local h = held_decode(id, entries[x + 1], worker)
      if h.token ~= j.token then h = nil end
      held_take(j, h)
      transition(ctx, j, 'DISPATCHED', '', 'lease expired', {'token', '', 'worker', ''})
      back[#back + 1] = id
    end
  end
  -- Leases dispatch pushed to it (common_lease.lua) are of jobs handed back above.
  redis.call('DEL', held, P .. ':wcancel:' .. worker, P .. ':wcnudge:' .. worker,
             P .. ':wgot:' .. worker,
             P .. ':wnudge:' .. worker)
  redis.call('HDEL', P .. ':wwait', worker)
  redis.call('HDEL', P .. ':wepoch', worker)
  redis.call('ZREM', P .. ':wlease', worker)
end
if #back > 0 then
  redis.call('LPUSH', P .. ':ready', unpack(back))
  redis.call('LPUSH', P .. ':wake', '1')
  redis.call('LTRIM', P .. ':wake', 0, 63)
end
local due = redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', now, 'LIMIT', 0, max)
if #due > 0 then
  local vt = activation_vt(P)
  for _, id in ipairs(due) do
    local h = redis.call('HMGET', jkey(P, id), 'state', 'tenant', unpack(SCORE_READ))
    if h[1] == 'PENDING' then
      local score = queue_score({score = h[3], priority = h[4], start_deadline = h[5],
                                 created = h[6]})
      redis.call('ZADD', P .. ':pending:' .. h[2], score, id)
      redis.call('ZADD', P .. ':active', 'NX', vt, h[2])
    end
  end
  redis.call('ZREM', P .. ':delayed', unpack(due))
  wake_dispatch(ctx)
end
flush(ctx)
return {#back, #due}
