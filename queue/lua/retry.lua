-- Runs a FAILED or CANCELLED job again from a fresh attempt budget; its past errors are kept.
-- ARGV: P now id
local P, now, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local j = read_job(P, id, {'tenant', 'score'})
if not j then return redis.error_reply('NOTFOUND') end
if j.state ~= 'FAILED' and j.state ~= 'CANCELLED' then
  return redis.error_reply('NOTFINAL ' .. j.state)
end
local ctx = new_ctx(P, now)
transition(ctx, j, 'PENDING', '', 'retried by request',
           {'attempt', 1, 'model', '', 'account', '', 'upstream', '', 'token', '', 'worker', '',
            'err_cat', '', 'err_msg', '', 'err_code', '', 'finished', '', 'create_intent', ''})
redis.call('ZADD', P .. ':pending:' .. j.tenant, j.score, id)
redis.call('ZADD', P .. ':active', 'NX', redis.call('HGET', P .. ':meta', 'vt') or 0, j.tenant)
wake_dispatch(ctx)
flush(ctx)
return 'OK'
