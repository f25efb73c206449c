-- Records a RUNNING job's phase (and the upstream task id the moment it is known), fenced by
-- the lease token. Storing an upstream id also clears the create intent (create_permit.lua),
-- settles the create in the account's create log, and claims the task for this job: a task
-- found again after a lost create answer may be one that another job already owns (two
-- identical prompts), and that answers OWNED <job>. The claim expires after two days, longer
-- than any provider keeps a task listed (Seedance 24 h, Veo 2 days; lookups only consider
-- tasks created since the lost create was sent).
-- TRANSFERRING means the upstream task has ended: the account's concurrency slot is given back
-- here, not when the clip is stored, because providers count only tasks still generating, and
-- a download or a slow store must not keep the next job from starting.
-- ARGV: P now id token phase upstream detail
local P, now, id, token, phase, upstream = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4],
                                           ARGV[5], ARGV[6]
local j = jkey(P, id)
local h = redis.call('HMGET', j, 'state', 'token', 'batch', 'slot', 'account', 'create_log')
if h[1] ~= 'RUNNING' then return redis.error_reply('NOTRUNNING ' .. tostring(h[1])) end
if h[2] ~= token then return redis.error_reply('LEASELOST') end
local extra = {}
if upstream ~= '' then
  local owner_key = P .. ':owner:' .. (h[5] or '') .. ':' .. upstream
  if not redis.call('SET', owner_key, id, 'NX', 'EX', 172800) then
    local owner = redis.call('GET', owner_key)
    if owner ~= id then return redis.error_reply('OWNED ' .. tostring(owner)) end
  end
  extra = {'upstream', upstream, 'create_intent', '', 'create_log', ''}
  settle_create(P, h[5], h[6], now)
end
if phase == 'TRANSFERRING' then
  release_slot(P, h[4], h[5])
  extra[#extra + 1] = 'slot'
  extra[#extra + 1] = ''
end
transition(P, id, now, 'RUNNING', 'RUNNING', phase, ARGV[7], extra, h[3])
return 'OK'
