-- Records a RUNNING job's phase (and the upstream task id the moment it is known), fenced by
-- the lease token. ARGV: P now id token phase upstream detail
-- TRANSFERRING means the upstream task has ended: the account's concurrency slot is given back
-- here, not when the clip is stored, because providers count only tasks still generating, and
-- a download or a slow store must not keep the next job from starting.
local P, now, id, token, phase, upstream = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4],
                                           ARGV[5], ARGV[6]
local j = jkey(P, id)
local h = redis.call('HMGET', j, 'state', 'token', 'batch', 'slot', 'account', 'create_log')
if h[1] ~= 'RUNNING' then return redis.error_reply('NOTRUNNING ' .. tostring(h[1])) end
if h[2] ~= token then return redis.error_reply('LEASELOST') end
local extra = {}
if upstream ~= '' then
  extra = {'upstream', upstream, 'create_log', ''}
  settle_create(P, h[5], h[6], now)
end
if phase == 'TRANSFERRING' then
  release_slot(P, h[4], h[5])
  extra[#extra + 1] = 'slot'
  extra[#extra + 1] = ''
end
transition(P, id, now, 'RUNNING', 'RUNNING', phase, ARGV[7], extra, h[3])
return 'OK'
