-- Gives a RUNNING job back to the queue with its account slot and upstream task kept, so the
-- next worker resumes polling the same upstream task (drain, or a lease found expired).
-- ARGV: P now id token(or '' to skip the check) reason
local P, now, id, token, reason = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local j = jkey(P, id)
local h = redis.call('HMGET', j, 'state', 'token', 'upstream')
if h[1] ~= 'RUNNING' then return redis.error_reply('NOTRUNNING ' .. tostring(h[1])) end
if token ~= '' and h[2] ~= token then return redis.error_reply('LEASELOST') end
transition(P, id, now, 'RUNNING', 'DISPATCHED', '', reason, {'token', '', 'worker', ''})
redis.call('ZREM', P .. ':leases', id)
redis.call('LPUSH', P .. ':ready', id)
redis.call('LPUSH', P .. ':wake', '1')
redis.call('LTRIM', P .. ':wake', 0, 63)
return 'OK'
