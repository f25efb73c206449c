-- Housekeeping, safe to run from every scheduler: a worker whose lease lapsed loses every job it
-- held, each handed back (the next worker resumes the same upstream task; the cleared token
-- fences the old worker out); retries whose backoff is over become PENDING again, or go back to
-- `ready` when they kept their finished upstream task (fail.lua, keep_task: DISPATCHED).
-- ARGV: P now max
-- Returns {jobs_handed_back, requeued_retries}.
local P, now, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ctx = new_ctx(P, now, ARGV[2])
local workers = redis.call('ZRANGEBYSCORE', P .. ':wlease', '-inf', now, 'LIMIT', 0, max)
local back = {}
for _, worker in ipairs(workers) do
  hand_back_held(ctx, worker, 'lease expired', back)
  redis.call('HDEL', P .. ':wepoch', worker)
  redis.call('ZREM', P .. ':wlease', worker)
end
ready_again(P, back)
-- Slots of cancelled jobs whose tasks may still have been generating (cancel.lua), given back
-- once those tasks would have ended.
local held = redis.call('ZRANGEBYSCORE', P .. ':slothold', '-inf', now, 'LIMIT', 0, max)
for _, member in ipairs(held) do
  release_slot(ctx, string.match(member, '^(.*)|[^|]*|[^|]*$'))  -- "<slot>|<job>|<seq>"
end
if #held > 0 then redis.call('ZREM', P .. ':slothold', unpack(held)) end
-- Parked jobs whose start deadline has passed (`parkdl`, common_groups.lua) go back to their
-- queue with their score, no longer waiting for funds: the next dispatch round fails them there
-- for the deadline and refunds their holds.
local late = redis.call('ZRANGEBYSCORE', P .. ':parkdl', '-inf', now, 'LIMIT', 0, max)
if #late > 0 then
  local vt
  for _, id in ipairs(late) do
    local tenant = redis.call('HGET', jkey(P, id), 'tenant')
    if tenant and tenant ~= '' then
      local parked = P .. ':parked:' .. tenant
      local score = redis.call('ZSCORE', parked, id)
      if score then
        redis.call('ZADD', P .. ':pending:' .. tenant, score, id)
        redis.call('ZREM', parked, id)
        redis.call('ZREM', P .. ':parkneed:' .. tenant, id)
        redis.call('HDEL', jkey(P, id), 'waiting', 'wait_need')
        vt = vt or activation_vt(P)
        redis.call('ZADD', P .. ':active', 'NX', vt, tenant)
      end
    end
  end
  redis.call('ZREM', P .. ':parkdl', unpack(late))
  wake_dispatch(ctx)
end
local due = redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', now, 'LIMIT', 0, max)
if #due > 0 then
  local vt = activation_vt(P)
  local kept = {}
  for _, id in ipairs(due) do
    local h = redis.call('HMGET', jkey(P, id), 'state', 'tenant', unpack(SCORE_READ))
    if h[1] == 'DISPATCHED' then
      kept[#kept + 1] = id
    elseif h[1] == 'PENDING' and (h[2] or '') == '' then
      -- A corrupt record (no `tenant`: no queue to go back to) fails, naming the field, instead
      -- of stopping every reap at it. Its wallet is not known: a billed job's hold stays.
      local j = read_job(P, id)
      if j.bill ~= '1' then move_money(ctx, j, 'refund', 0, 0) end
      local text = 'corrupt record: no `tenant`; the job cannot be dispatched: submit it again'
      transition(ctx, j, 'FAILED', '', text, {'err_cat', 'internal', 'err_msg', text, 'err_code',
                                               'corrupt_record', 'finished', now})
    elseif h[1] == 'PENDING' then
      local score = queue_score({score = h[3], priority = h[4], start_deadline = h[5],
                                 created = h[6]})
      redis.call('ZADD', P .. ':pending:' .. h[2], score, id)
      redis.call('ZADD', P .. ':active', 'NX', vt, h[2])
    end
  end
  redis.call('ZREM', P .. ':delayed', unpack(due))
  ready_again(P, kept)
  wake_dispatch(ctx)
end
flush(ctx)
return {#back, #due}
