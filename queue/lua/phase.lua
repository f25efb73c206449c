-- Records RUNNING jobs' phases (and the upstream task id the moment it is known), fenced by
-- the lease token; many jobs per call (a worker gathers the phase changes of a few
-- milliseconds). Storing an upstream id also clears the create intent (create_permit.lua),
-- settles the create in the account's create log, and claims the task for this job: a task
-- found again after a lost create answer may be one that another job already owns (two
-- identical prompts), and that answers OWNED <job>. The claim expires after two days, longer
-- than any provider keeps a task listed (Seedance 24 h, Veo 2 days; lookups only consider
-- tasks created since the lost create was sent).
-- TRANSFERRING means the upstream task has ended: the account's concurrency slot is given back
-- here, not when the clip is stored, because providers count only tasks still generating, and
-- a download or a slow store must not keep the next job from starting.
-- ARGV: P now n, then per job: k followed by k names and values (id token phase upstream
-- detail). Returns per job 'OK' or the refusal ('LEASELOST', 'NOTRUNNING <state>', 'OWNED <job>').
local P, now, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ctx = new_ctx(P, now)
local out = {}
local i = 4
for _ = 1, n do
  local k = tonumber(ARGV[i]); i = i + 1
  local f = {}
  for x = i, i + 2 * k - 1, 2 do f[ARGV[x]] = ARGV[x + 1] end
  i = i + 2 * k
  local upstream = f.upstream or ''
  local j = read_job(P, f.id, {'token', 'slot', 'account', 'create_log'})
  local refused = nil
  if not j or j.state ~= 'RUNNING' then
    refused = 'NOTRUNNING ' .. tostring(j and j.state)
  elseif j.token ~= f.token then
    refused = 'LEASELOST'
  end
  local extra = {}
  if not refused and upstream ~= '' then
    local owner_key = P .. ':owner:' .. (j.account or '') .. ':' .. upstream
    local owner = redis.call('SET', owner_key, f.id, 'NX', 'GET', 'EX', 172800)
    if owner and owner ~= f.id then
      refused = 'OWNED ' .. tostring(owner)
    else
      extra = {'upstream', upstream, 'create_intent', '', 'create_log', ''}
      settle_create(P, j.account, j.create_log, now)
    end
  end
  if refused then
    out[#out + 1] = refused
  else
    if f.phase == 'TRANSFERRING' then
      release_slot(ctx, j.slot)
      extra[#extra + 1] = 'slot'
      extra[#extra + 1] = ''
    end
    transition(ctx, j, 'RUNNING', f.phase, f.detail or '', extra)
    out[#out + 1] = 'OK'
  end
end
flush(ctx)
return out
