-- Records, just before a worker sends a create upstream, that a create is under way for this
-- attempt (fenced by the lease token). If the worker dies or the create's answer is lost, the
-- next lease hands it back to a worker, which looks the task up instead of paying for a second
-- one. Not a transition: one HSET, no history or event (this is on every job's path).
-- phase.lua clears it when the upstream id is stored; fail.lua and retry.lua when the attempt
-- ends. ARGV: P now id token intent("<sent_ms>:<attempt>")
local P, id, token, intent = ARGV[1], ARGV[3], ARGV[4], ARGV[5]
local j = jkey(P, id)
local h = redis.call('HMGET', j, 'state', 'token')
if h[1] ~= 'RUNNING' then return redis.error_reply('NOTRUNNING ' .. tostring(h[1])) end
if h[2] ~= token then return redis.error_reply('LEASELOST') end
redis.call('HSET', j, 'create_intent', intent)
return 'OK'
