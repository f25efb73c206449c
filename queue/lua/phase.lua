-- Records a RUNNING job's phase (and the upstream task id the moment it is known), fenced by
-- the lease token. Storing an upstream id also clears the create intent (intent.lua) and
-- claims the task for this job: a task found again after a lost create answer may be one
-- that another job already owns (two identical prompts), and that answers OWNED <job>.
-- The claim expires after two days, longer than any provider keeps a task listed (Seedance
-- 24 h, Veo 2 days; lookups only consider tasks created since the lost create was sent).
-- ARGV: P now id token phase upstream detail
local P, now, id, token, phase, upstream = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4],
                                           ARGV[5], ARGV[6]
local j = jkey(P, id)
local h = redis.call('HMGET', j, 'state', 'token', 'batch', 'account')
if h[1] ~= 'RUNNING' then return redis.error_reply('NOTRUNNING ' .. tostring(h[1])) end
if h[2] ~= token then return redis.error_reply('LEASELOST') end
local extra = {}
if upstream ~= '' then
  local owner_key = P .. ':owner:' .. (h[4] or '') .. ':' .. upstream
  if not redis.call('SET', owner_key, id, 'NX', 'EX', 172800) then
    local owner = redis.call('GET', owner_key)
    if owner ~= id then return redis.error_reply('OWNED ' .. tostring(owner)) end
  end
  extra = {'upstream', upstream, 'create_intent', ''}
end
transition(P, id, now, 'RUNNING', 'RUNNING', phase, ARGV[7], extra, h[3])
return 'OK'
