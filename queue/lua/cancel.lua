-- Cancels a job in any non-terminal state. A RUNNING job's id is added to its worker's cancel
-- list, with a token on `wcnudge:<worker>` that the worker's cancel listener blocks on: it reads
-- the list, stops the job at once and cancels upstream where the provider allows. An id stays on
-- the list until the worker's heartbeat acknowledges it (heartbeat.lua): a pop whose answer was
-- lost (a command timeout, a failover) would leave the job running until its next write. A
-- group (storyboard, compare) is cancelled first, then each of its children that has not ended
-- (their ends then leave the group as it is); a group that has already ended has its children
-- that still run cancelled, and stays as it ended.
-- ARGV: P now id
-- Returns {previous_state, upstream, account} or an error reply NOTFOUND / TERMINAL <state>.
local P, now, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local READ = {'tenant', 'account', 'upstream', 'slot', 'worker', 'create_intent', 'token'}
local j = read_job(P, id, {'tenant', 'account', 'upstream', 'slot', 'worker', 'create_intent',
                           'children', 'token'})
if not j then return redis.error_reply('NOTFOUND') end
local open_children = {}
if is_terminal(j.state) then
  -- A group that failed (a shot failed for good) while other children still run: a cancel
  -- stops those, so nothing more is spent on it; the group stays as it ended.
  for child_id in string.gmatch(j.children or '', '[^,]+') do
    local c = read_job(P, child_id, READ)
    if c and not is_terminal(c.state) then open_children[#open_children + 1] = c end
  end
  if #open_children == 0 then return redis.error_reply('TERMINAL ' .. j.state) end
end
local previous = j.state
local ctx = new_ctx(P, now, ARGV[2])
local function cancel_one(job, detail)
  local extra = {'finished', now, 'slot', ''}
  if job.state == 'PENDING' then
    redis.call('ZREM', P .. ':pending:' .. job.tenant, job.id)
    redis.call('ZREM', P .. ':delayed', job.id)
    -- Parked for want of funds (dispatch.lua): it leaves the parked sets, and no longer waits.
    if redis.call('ZREM', P .. ':parked:' .. job.tenant, job.id) == 1 then
      redis.call('ZREM', P .. ':parkneed:' .. job.tenant, job.id)
      redis.call('ZREM', P .. ':parkdl', job.id)
      extra = {'finished', now, 'slot', '', 'waiting', '', 'wait_need', ''}
    end
  else
    if job.state == 'DISPATCHED' then
      redis.call('HDEL', P .. ':rdata', job.id)
      -- A retry that kept its finished task waits there (fail.lua, keep_task).
      redis.call('ZREM', P .. ':delayed', job.id)
    end
    if job.state == 'RUNNING' and job.worker and job.worker ~= '' then
      -- A held job's create intent, upstream id, slot and phase history are in its worker's
      -- held table (common_held.lua): merged in, written by the transition below.
      held_take(job, held_entry(P, job))
      redis.call('HDEL', P .. ':wjobs:' .. job.worker, job.id)
      redis.call('RPUSH', P .. ':wcancel:' .. job.worker, job.id)
      redis.call('LPUSH', P .. ':wcnudge:' .. job.worker, '1')
      redis.call('LTRIM', P .. ':wcnudge:' .. job.worker, 0, 63)
    end
    -- Held while a task it sent may still generate (common.lua, give_back_slot).
    give_back_slot(ctx, job, true)
  end
  -- Before the create reached the provider: refunded. Once a create was sent (a task id
  -- stored, or a create intent recorded), the generation may run and be billed whatever we do:
  -- settled.
  if (job.upstream and job.upstream ~= '') or (job.create_intent and job.create_intent ~= '') then
    move_money(ctx, job, 'settle', 0, settle_price(ctx, job))
  else
    move_money(ctx, job, 'refund', 0, 0)
  end
  transition(ctx, job, 'CANCELLED', '', detail, extra)
end
if #open_children > 0 then
  for _, c in ipairs(open_children) do
    cancel_one(c, 'cancelled with its group ' .. id .. ' (which had ended ' .. j.state .. ')')
  end
  flush(ctx)
  return {previous, '', ''}
end
cancel_one(j, 'cancelled by request')
for child_id in string.gmatch(j.children or '', '[^,]+') do
  local c = read_job(P, child_id, READ)
  if c and not is_terminal(c.state) then cancel_one(c, 'cancelled with its group ' .. id) end
end
flush(ctx)
return {previous, j.upstream or '', j.account or ''}
