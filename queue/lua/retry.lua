-- Runs a FAILED or CANCELLED job again from a fresh attempt budget; its past errors are kept.
-- ARGV: P now id
local P, now, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local j = jkey(P, id)
local h = redis.call('HMGET', j, 'state', 'tenant', 'score')
if not h[1] then return redis.error_reply('NOTFOUND') end
if h[1] ~= 'FAILED' and h[1] ~= 'CANCELLED' then return redis.error_reply('NOTFINAL ' .. h[1]) end
transition(P, id, now, h[1], 'PENDING', '', 'retried by request',
           {'attempt', 1, 'model', '', 'account', '', 'upstream', '', 'token', '', 'worker', '',
            'err_cat', '', 'err_msg', '', 'err_code', '', 'finished', '', 'create_intent', ''})
redis.call('ZADD', P .. ':pending:' .. h[2], h[3], id)
redis.call('ZADD', P .. ':active', 'NX', redis.call('HGET', P .. ':meta', 'vt') or 0, h[2])
return 'OK'
