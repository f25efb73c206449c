-- Cancels a job in any non-terminal state. A RUNNING job's id is pushed to its worker's cancel
-- list, which the worker blocks on (and its heartbeat drains): it stops at once and cancels
-- upstream where the provider allows.
-- ARGV: P now id
-- Returns {previous_state, upstream, account} or an error reply NOTFOUND / TERMINAL <state>.
local P, now, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local j = read_job(P, id, {'tenant', 'account', 'upstream', 'slot', 'worker', 'create_intent'})
if not j then return redis.error_reply('NOTFOUND') end
if is_terminal(j.state) then return redis.error_reply('TERMINAL ' .. j.state) end
local previous = j.state
local ctx = new_ctx(P, now)
if previous == 'PENDING' then
  redis.call('ZREM', P .. ':pending:' .. j.tenant, id)
  redis.call('ZREM', P .. ':delayed', id)
else
  release_slot(ctx, j.slot)
  if previous == 'RUNNING' and j.worker and j.worker ~= '' then
    redis.call('SREM', P .. ':wjobs:' .. j.worker, id)
    redis.call('RPUSH', P .. ':wcancel:' .. j.worker, id)
  end
end
-- Before the create reached the provider: refunded. Once a create was sent (a task id stored,
-- or a create intent recorded), the generation may run and be billed whatever we do: settled.
if (j.upstream and j.upstream ~= '') or (j.create_intent and j.create_intent ~= '') then
  move_money(ctx, j, 'settle', 0, job_price(ctx, j, j.model or ''))
else
  move_money(ctx, j, 'refund', 0, 0)
end
transition(ctx, j, 'CANCELLED', '', 'cancelled by request', {'finished', now, 'slot', ''})
flush(ctx)
return {previous, j.upstream or '', j.account or ''}
