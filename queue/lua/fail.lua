-- A RUNNING job's attempt failed. Either it goes back to wait for a retry (PENDING after
-- `retry_at`), or it ends FAILED. Every attempt's error is kept (field `e:<seq>` of the job, a
-- JSON object). The account slot is freed either way, and a rate-limited account cools down
-- fleet-wide.
-- An attempt that failed after its upstream task finished (the clip's download, store or
-- sidecar) passes keep_task: the provider made the clip and bills it, so the retry keeps the
-- task, its account and model, and goes back to `ready` as DISPATCHED once `retry_at` passes
-- (reap.lua), and the next attempt fetches the clip again instead of paying for a new one; the
-- record keeps `generated` (when the task was first seen finished) until the task is let go. A
-- group's own step (join, contact sheet) passes it for a passing failure (Redis or the store
-- unreachable): its children are done, so it goes back to `ready` the same way.
-- ARGV: P now id token category message code retry(0|1) retry_at count_attempt(0|1)
--       cooldown_ms [keep_task(0|1)] [account_fault(0|1)] [over_concurrency(0|1)]
--       [create_answered(0|1)]
-- account_fault: the provider refused a create with a server error; the account's breaker
-- (below) cools it for a time that doubles with each such failure in a row.
-- over_concurrency: a rate_limited refusal that named concurrency, not rate (Kling's 1303): the
-- account learns a lower concurrency (below) and keeps its create rate.
-- create_answered: the failure is the provider's answer to this attempt's create, which made
-- nothing: the create intent create_permit.lua recorded for it (cleared here, with the attempt)
-- no longer says a task may exist.
local P, now, id, token = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local category, message, code = ARGV[5], ARGV[6], ARGV[7]
local retry, retry_at, count_attempt = ARGV[8] == '1', tonumber(ARGV[9]), ARGV[10] == '1'
local cooldown_ms = tonumber(ARGV[11])
local keep_task = ARGV[12] == '1'
local account_fault = ARGV[13] == '1'
local over_concurrency = ARGV[14] == '1' and category == 'rate_limited'
local create_answered = ARGV[15] == '1'
local j = read_job(P, id, {'token', 'account', 'attempt', 'max_attempts', 'slot', 'create_log',
                          'worker', 'upstream', 'kind', 'generated', 'create_intent'})
if not j or j.state ~= 'RUNNING' then
  return redis.error_reply('NOTRUNNING ' .. tostring(j and j.state))
end
if j.token ~= token then return redis.error_reply('LEASELOST') end
-- A held job's create-log member, phase changes (upstream id, slot given back) and their
-- history are in its worker's held table (common_held.lua): merged in, written by the transition.
held_take(j, held_entry(P, j))
local ctx = new_ctx(P, now, ARGV[2])
-- The task finished on an earlier attempt whose clip was not stored (`generated`), and now the
-- provider no longer knows it: its results expired, and the clip with them. Making it again would
-- pay the provider for a second generation of what it already billed, which is the tenant's call
-- to make (RetryJob), not the queue's: the job ends here, charged for the generation it had.
-- Only the poll's not-found says the task is gone: one passed with keep_task (a result URL's CDN
-- answering 403/404 once) is retried from the same task, whose next poll hands out a fresh URL.
local was_generated = (j.generated or '') ~= '' and (j.upstream or '') ~= '' and
                          (j.kind or '') == ''
if was_generated and category == 'not_found' and not keep_task then
  retry = false
  code = 'result_expired'
  message = 'upstream task ' .. j.upstream .. ' finished on an earlier attempt, but its clip ' ..
                'was not stored and the provider no longer knows the task (' .. message ..
                '). It was not made again, which would pay for a second generation: ' ..
                'RetryJob makes it anew'
end
-- A record states no `max_attempts` when it is the default (kDefaultMaxAttempts in job_store.h).
local attempt, max_attempts = tonumber(j.attempt) or 1, tonumber(j.max_attempts) or 5
local error_field = 'e:' .. ((tonumber(j.seq) or 0) + 1)
local error_json = cjson.encode({attempt = attempt, category = category, message = message,
                                 code = code, at = now, model = j.model or '',
                                 account = j.account or ''})
if j.worker and j.worker ~= '' then redis.call('HDEL', P .. ':wjobs:' .. j.worker, id) end
-- Given up while its task may still generate (its finish deadline passed, a create whose outcome
-- cannot be known, a resumed task whose model this worker lacks): the provider still counts the
-- task, so the slot is held until it would have ended. Not a task past its model's
-- generation_timeout: stuck far longer than the model ever takes, it would only hold the slot
-- longer still. Nor a create the provider refused (create_answered, no task id): it made nothing.
local refused_create = create_answered and (j.upstream or '') == ''
give_back_slot(ctx, j, not keep_task and not refused_create and
                   ((category == 'deadline_exceeded' and code ~= 'generation_timeout') or
                       category == 'create_outcome_unknown' or category == 'model_gone'))
settle_create(P, j.account, j.create_log, now)
-- The breaker: failures within FAULT_WINDOW of the account's last one make a streak, and the
-- streak's n-th failure cools the account for 2^(n-1) s, at most FAULT_MAX_COOL. Only a create
-- sent after the last failure lengthens the streak: the creates already on their way when a blip
-- hit fail with it, and say nothing new about the account. A success does not touch the account
-- here (that would cost every job a write): a streak simply lapses.
local FAULT_WINDOW, FAULT_MAX_COOL = 120000, 60000
if account_fault and j.account and j.account ~= '' then
  local r = redis.call('HMGET', P .. ':acct:' .. j.account, 'fault_streak', 'fault_at')
  local streak = tonumber(r[1] or '0') or 0
  local last = tonumber(r[2] or '0') or 0
  if now - last > FAULT_WINDOW then streak = 0 end
  local sent = tonumber(string.match(j.create_intent or '', '^(%d+)') or '') or now
  if streak == 0 or sent > last then streak = streak + 1 end
  redis.call('HSET', P .. ':acct:' .. j.account, 'fault_streak', streak, 'fault_at', now)
  local cool = math.floor(math.min(FAULT_MAX_COOL, 1000 * 2 ^ (streak - 1)))
  cooldown_ms = math.max(cooldown_ms, cool)
end
if (cooldown_ms > 0 or over_concurrency) and j.account and j.account ~= '' then
  local a = P .. ':acct:' .. j.account
  local until_ms = now + cooldown_ms
  local r = redis.call('HMGET', a, 'cooldown_until', 'rpm', 'learned_rpm', 'learned_at')
  local cur = tonumber(r[1] or '0') or 0
  local changes = {}
  if until_ms > cur then changes = {'cooldown_until', until_ms} end
  if category == 'rate_limited' then count(ctx, a, 'rate_limited', 1) end
  if over_concurrency then
    -- The provider had as many of the account's tasks as it allows when this create came: the
    -- account's slots in use, this job's included (its slot is given back when the call's
    -- counters are written), were one too many. Learned from what runs, never above what
    -- dispatch allows now, so each refusal of a burst takes one more off.
    local h = redis.call('HMGET', a, 'in_flight', 'max_concurrent', 'learned_conc',
                         'learned_conc_at')
    local allowed = effective_conc(tonumber(h[2]) or 0, tonumber(h[3]), tonumber(h[4]), now)
    local running = math.min(allowed, tonumber(h[1] or '0') or 0)
    changes[#changes + 1] = 'learned_conc'
    changes[#changes + 1] = math.max(1, running - 1)
    changes[#changes + 1] = 'learned_conc_at'
    changes[#changes + 1] = now
  elseif category == 'rate_limited' then
    -- The provider's real limit is lower than what we used: halve the effective rate (from
    -- where it stands now, recovery included) until the account recovers (see dispatch.lua).
    local rpm = tonumber(r[2]) or 0
    local eff = effective_rpm(rpm, tonumber(r[3]), tonumber(r[4]), now)
    changes[#changes + 1] = 'learned_rpm'
    changes[#changes + 1] = math.max(1, eff / 2)
    changes[#changes + 1] = 'learned_at'
    changes[#changes + 1] = now
  end
  if #changes > 0 then redis.call('HSET', a, unpack(changes)) end
end
-- Billed or refunded (issue 12). Nothing upstream (no task id stored): the provider made nothing
-- and bills nothing. A task that exists and failed is billed only where the account says its
-- provider bills such failures (accounts[].billing); a create whose outcome cannot be known is
-- billed (it may have started a paid generation). The refusals a provider answers at once
-- (invalid request, auth, 429, unknown model) are never billed. A task that finished (keep_task
-- passed: what failed came after its generation) was made and is billed whatever failed after
-- it, as is one the worker cancelled for a deadline (a cancel after the create, as cancel.lua).
-- So is one that finished on an earlier attempt, whatever ends it now (its result expired, its
-- model gone from the catalogue of the worker that leased it again).
-- A job given up while a task may be generating upstream (its finish deadline passed, its model
-- gone from the worker's catalogue) is billed as its slot is held (give_back_slot): its task id
-- is stored, or a create was sent whose answer never came (an earlier lease died after sending
-- it, and this one gave up before looking the task up), and the provider bills that task. A
-- create the provider refused (create_answered: unknown model, say) made nothing.
local generated = (keep_task or was_generated) and j.upstream and j.upstream ~= '' and
                      not (j.kind and j.kind ~= '')
local task_may_exist = (j.upstream or '') ~= '' or
                           ((j.create_intent or '') ~= '' and not create_answered)
local billed = false
if category == 'create_outcome_unknown' or generated then
  billed = true
elseif (category == 'deadline_exceeded' or category == 'model_gone') and task_may_exist then
  billed = true
elseif j.upstream and j.upstream ~= '' and category ~= 'invalid_request' and
    category ~= 'auth_failed' and category ~= 'rate_limited' and category ~= 'model_gone' then
  local b = redis.call('HMGET', P .. ':acct:' .. (j.account or ''), 'bill_policy', 'bill_failed')
  if category == 'policy_rejected' then billed = b[1] == '1' else billed = b[2] == '1' end
end
local will_retry = retry and (attempt + (count_attempt and 1 or 0)) <= max_attempts
-- Whatever else fails a later attempt of a finished task (a worker without the account's key,
-- a Redis blip), its retry keeps the task: only its expiry above lets it go.
if was_generated then keep_task = true end
keep_task = keep_task and will_retry and
                ((j.upstream and j.upstream ~= '' and j.account and j.account ~= '') or
                    (j.kind and j.kind ~= ''))
if keep_task then
  -- Nothing to move: the hold stays, and the task is billed once, when its clip is stored
  -- (complete.lua).
elseif billed then
  move_money(ctx, j, 'settle', 0, settle_price(ctx, j))
elseif not will_retry then
  move_money(ctx, j, 'refund', 0, 0)
end
if count_attempt then attempt = attempt + 1 end
local result = 'FAILED'
-- Counted when the job ends FAILED, whatever the worker asked: a retryable failure with no
-- attempt left ends here too (the usual end of a sick provider's jobs).
if not keep_task and not (retry and attempt <= max_attempts) and j.model and j.model ~= '' then
  count(ctx, P .. ':model:' .. j.model, 'failed', 1)
end
if keep_task then
  local kept = (j.kind and j.kind ~= '') and ' (the step runs again)' or
                   ' (the finished task is kept)'
  local fields = {error_field, error_json, 'attempt', attempt, 'token', '', 'worker', '',
                  'slot', '', 'create_log', '', 'create_intent', ''}
  if not (j.kind and j.kind ~= '') and not was_generated then
    fields[#fields + 1] = 'generated'
    fields[#fields + 1] = now
  end
  transition(ctx, j, 'DISPATCHED', '', category .. ': ' .. message .. kept, fields)
  redis.call('ZADD', P .. ':delayed', retry_at, id)
  result = 'RETRY'
elseif retry and attempt <= max_attempts then
  transition(ctx, j, 'PENDING', '', category .. ': ' .. message,
             {error_field, error_json, 'attempt', attempt, 'model', '', 'account', '',
              'upstream', '', 'generated', '', 'token', '', 'worker', '', 'slot', '',
              'create_log', '', 'create_intent', ''})
  redis.call('ZADD', P .. ':delayed', retry_at, id)
  result = 'RETRY'
else
  local fields = {error_field, error_json, 'err_cat', category, 'err_msg', message, 'err_code',
                  code, 'finished', now, 'slot', '', 'create_log', '', 'create_intent', ''}
  -- A task that finished (what failed came after it: the store, its sidecar) and whose clip
  -- the provider may still hand out: RetryJob fetches it again instead of paying for another
  -- (retry.lua). One that expired upstream (result_expired) is made anew.
  if generated and code ~= 'result_expired' and (j.generated or '') == '' then
    fields[#fields + 1] = 'generated'
    fields[#fields + 1] = now
  end
  transition(ctx, j, 'FAILED', '', category .. ': ' .. message, fields)
end
flush(ctx)
return result
