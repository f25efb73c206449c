-- Runs a FAILED or CANCELLED job again from a fresh attempt budget; its past errors are kept.
-- A group (storyboard, compare) runs again only its children that FAILED or were CANCELLED;
-- when every child already succeeded, its own step (join, contact sheet) is queued at once.
-- A compare that SUCCEEDED with takes that failed (its sheet made of the others) runs those
-- takes again too, and its contact sheet is made anew once they end; not once a take has been
-- picked (the pick, and the clips delete_others removed, would no longer match the sheet).
-- A chain (common_groups.lua, chain_queue_next) resumes from its first shot that has not succeeded:
-- that one is queued (with the first frame it had), the ones after it wait again for it.
-- A child that FAILED after its upstream task finished keeps that task, as a plain job does
-- (keeps_task below): its clip is fetched again, and nothing is reserved or charged for it again.
-- ARGV: P now id
local P, now, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local j = read_job(P, id, {'tenant', 'kind', 'children', 'nchildren', 'children_ok', 'chain',
                          'upstream', 'account', 'generated', 'err_code', 'picked',
                          unpack(SCORE_READ)})
if not j then return redis.error_reply('NOTFOUND') end
local takes_again = j.state == 'SUCCEEDED' and j.kind == 'compare' and
                        (tonumber(j.children_ok) or 0) < (tonumber(j.nchildren) or 0)
if takes_again and (j.picked or '') ~= '' then
  return redis.error_reply('NOTFINAL SUCCEEDED, and take ' .. j.picked .. ' was picked: the ' ..
                               'takes that failed are run again only before a take is picked')
end
if j.state ~= 'FAILED' and j.state ~= 'CANCELLED' and not takes_again then
  return redis.error_reply('NOTFINAL ' .. j.state)
end
-- A group's child runs again only through its group: alone, a chain's shot would start without
-- the frame of the shot before it (or before that one succeeded) and the group, already ended,
-- would never take its result (nor a chain go on past it).
if j.parent and j.parent ~= '' then return redis.error_reply('CHILD ' .. j.parent) end
local ctx = new_ctx(P, now, ARGV[2])
-- The tenant's limits hold for what a retry puts back in the queue as they do at submit: the job,
-- or a group and the children it runs again. (Without this a tenant at max_queued could retry a
-- failed batch past it, again and again.)
do
  local back = 1
  if j.kind and j.kind ~= '' then
    for child_id in string.gmatch(j.children or '', '[^,]+') do
      local c = read_job(P, child_id, {})
      if c and (c.state == 'FAILED' or c.state == 'CANCELLED' or
          (j.chain == '1' and c.state ~= 'SUCCEEDED')) then
        back = back + 1
      end
    end
  end
  local l = tenant_limits(P, j.tenant)
  if l.max_queued > 0 and l.queued + back > l.max_queued then
    return redis.error_reply('LIMIT max_queued ' .. l.max_queued .. ' ' .. j.tenant)
  elseif l.max_in_flight > 0 and l.in_flight + back > l.max_in_flight then
    return redis.error_reply('LIMIT max_in_flight ' .. l.max_in_flight .. ' ' .. j.tenant)
  end
end
-- A job that FAILED after its upstream task finished (the object store refused the clip or its
-- sidecar, attempts ran out) was billed for that task, and the provider may still hand the clip
-- out: running it again fetches the same task's clip rather than paying for a new generation.
-- Its task, model and account are kept and it goes straight back to `ready` (as fail.lua's
-- keep_task retry does); nothing more is reserved, so completing it charges nothing more. When
-- the provider no longer knows the task, that attempt ends result_expired, and a RetryJob of
-- that makes it anew. A group's child (a storyboard's shot, a chain's, a compare's take) that
-- ended so goes back the same way when its group runs again (below).
local KEPT_READ = {'upstream', 'account', 'generated', 'err_code'}
local function keeps_task(x)
  return x.state == 'FAILED' and (x.generated or '') ~= '' and (x.upstream or '') ~= '' and
             (x.account or '') ~= '' and x.err_code ~= 'result_expired'
end
local KEEP = {'attempt', 1, 'token', '', 'worker', '', 'err_cat', '', 'err_msg', '', 'err_code',
              '', 'finished', '', 'create_intent', '', 'slot', ''}
local function fetch_again(job, detail, fields)
  transition(ctx, job, 'DISPATCHED', '',
             detail .. ': fetching the clip of its finished upstream task ' .. job.upstream ..
                 ' again (not made again)', fields or KEEP)
  ready_again(P, {job.id})
end
if (not j.kind or j.kind == '') and keeps_task(j) then
  fetch_again(j, 'retried by request')
  flush(ctx)
  return 'OK'
end
-- The batch's budget must take what running again may cost: at least each job's cheapest allowed
-- model, past what it still holds. Refused here, naming the shortfall, rather than queued to
-- fail at dispatch (dispatch.lua's choose).
do
  local need, jobs = 0, {}
  if not j.kind or j.kind == '' then
    jobs[1] = j
  else
    -- A child that keeps its finished task (keeps_task) reserves nothing: it was billed once.
    for child_id in string.gmatch(j.children or '', '[^,]+') do
      local c = read_job(P, child_id, KEPT_READ)
      if c and (c.state == 'FAILED' or c.state == 'CANCELLED' or
          (j.chain == '1' and c.state ~= 'SUCCEEDED')) and not keeps_task(c) then
        jobs[#jobs + 1] = c
      end
    end
  end
  local billed = 0  -- what the group's billed children take from the wallet (below)
  for _, x in ipairs(jobs) do
    local add = math.max(0, min_price(ctx, x) - (tonumber(x.hold) or 0))
    need = need + add
    if x.bill == '1' then billed = billed + add end
  end
  local left, budget = budget_room(ctx, jobs[1] or j)
  if need > 0 and need > left then
    return redis.error_reply('OVERBUDGET running ' .. id .. ' again may cost ' .. dollars(need) ..
                                 ' and its batch ' .. (j.mbatch or j.batch) .. ' has ' ..
                                 dollars(math.max(0, left)) .. ' left of its budget of ' ..
                                 dollars(budget) .. ': raise the budget first')
  end
  -- A group's money is reserved up front, at a retry too: each child run again holds at least
  -- its cheapest model's price (reserve_rerun below), so a chain cannot stop part-way waiting
  -- for a top-up. A plain job takes from the wallet at dispatch, as before.
  if j.kind and j.kind ~= '' and billed > 0 then
    local w = wallet_of(ctx, j.tenant)
    if w and w.balance < billed then
      return redis.error_reply('WALLET ' .. money_str(w.balance) .. ' ' .. money_str(billed))
    end
  end
end
-- A group's child run again: its hold raised to its cheapest model's price (dispatch re-prices it
-- to the model chosen, taking any difference from the wallet).
local function reserve_rerun(c)
  local hold = tonumber(c.hold) or 0
  local least = min_price(ctx, c)
  if least > hold then move_money(ctx, c, 'reserve', least, 0) end
end
local RESET = {'attempt', 1, 'model', '', 'account', '', 'upstream', '', 'generated', '',
               'token', '', 'worker', '',
               'err_cat', '', 'err_msg', '', 'err_code', '', 'finished', '', 'create_intent', ''}
-- A group's child run again also drops its start deadline: that one said when the group was to
-- start, and it has (a retry mostly comes after it): kept, dispatch would fail the child again
-- at once for a deadline passed. A plain job keeps its own.
local CHILD_RESET = {'start_deadline', ''}
for _, x in ipairs(RESET) do CHILD_RESET[#CHILD_RESET + 1] = x end
local CHILD_KEEP = {'start_deadline', ''}
for _, x in ipairs(KEEP) do CHILD_KEEP[#CHILD_KEEP + 1] = x end
local vt = activation_vt(P)
local function requeue(job, detail, fields)
  fields = fields or RESET
  transition(ctx, job, 'PENDING', '', detail, fields)
  -- Scored as the record now stands: a start deadline the fields cleared no longer places it.
  for k = 1, #fields, 2 do
    if fields[k] == 'start_deadline' then job.start_deadline = false end
  end
  redis.call('ZADD', P .. ':pending:' .. job.tenant, queue_score(job), job.id)
  redis.call('ZADD', P .. ':active', 'NX', vt, job.tenant)
  wake_dispatch(ctx)
end
if not j.kind or j.kind == '' then
  requeue(j, 'retried by request')
elseif j.chain == '1' and (tonumber(j.children_ok) or 0) < (tonumber(j.nchildren) or 0) then
  local index, resume, prev_frame = 0, nil, nil
  for child_id in string.gmatch(j.children or '', '[^,]+') do
    local c = read_job(P, child_id, {'tenant', 'chain_frame', 'last_frame', 'upstream',
                                     'account', 'generated', 'err_code', unpack(SCORE_READ)})
    if c and (c.state == 'FAILED' or c.state == 'CANCELLED') then
      if not resume and keeps_task(c) then
        -- Its task finished (it ran from the frame it had): its clip is fetched again.
        resume = index
        fetch_again(c, 'retried with its chain ' .. id, CHILD_KEEP)
      elseif not resume then
        resume = index
        -- A shot cancelled while it waited never got the frame of the shot before it (that
        -- one ended after the chain had stopped, so chain_queue_next passed it by): it takes
        -- it now, or it would not start where that shot ends.
        local fields = nil
        if index > 0 and (c.chain_frame or '') == '' and prev_frame then
          fields = {'chain_frame', prev_frame}
          for _, x in ipairs(CHILD_RESET) do fields[#fields + 1] = x end
        end
        reserve_rerun(c)
        requeue(c, 'retried with its chain ' .. id, fields or CHILD_RESET)
      else
        reserve_rerun(c)
        transition(ctx, c, 'PENDING', '',
                   'retried with its chain ' .. id .. ': waits for shots[' .. resume .. ']',
                   CHILD_RESET)
      end
    elseif c and c.state ~= 'SUCCEEDED' and not resume then
      resume = index  -- still on its way (it ends the chain or carries it on)
    end
    prev_frame = c and c.state == 'SUCCEEDED' and (c.last_frame or '') ~= '' and c.last_frame or
                     nil
    index = index + 1
  end
  transition(ctx, j, 'PENDING', '',
             'retried by request: the chain resumes from shots[' .. (resume or 0) .. ']', RESET)
else
  local again = 0
  for child_id in string.gmatch(j.children or '', '[^,]+') do
    local c = read_job(P, child_id, {'tenant', 'upstream', 'account', 'generated', 'err_code',
                                     unpack(SCORE_READ)})
    if c and keeps_task(c) then
      fetch_again(c, 'retried with its group ' .. id, CHILD_KEEP)
      again = again + 1
    elseif c and (c.state == 'FAILED' or c.state == 'CANCELLED') then
      reserve_rerun(c)
      requeue(c, 'retried with its group ' .. id, CHILD_RESET)
      again = again + 1
    end
  end
  if (tonumber(j.children_ok) or 0) >= (tonumber(j.nchildren) or 0) then
    transition(ctx, j, 'PENDING', '', 'retried by request', RESET)
    group_queue_step(ctx, j, 'retried by request; every child had succeeded: step queued')
  else
    transition(ctx, j, 'PENDING', '', 'retried by request: ' .. again .. ' children run again',
               RESET)
  end
end
flush(ctx)
return 'OK'
