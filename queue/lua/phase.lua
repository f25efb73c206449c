-- Records RUNNING jobs' phases (and the upstream task id the moment it is known), fenced by
-- the lease token; many jobs per call (a worker gathers the phase changes of a few
-- milliseconds). Storing an upstream id also clears the create intent (create_permit.lua),
-- settles the create in the account's create log, and claims the task for this job: a task
-- found again after a lost create answer may be one that another job already owns (two
-- identical prompts), and that answers OWNED <job>. A claim stays visible for at least two
-- days, longer than any provider keeps a task listed (Seedance 24 h, Veo 2 days; lookups only
-- consider tasks created since the lost create was sent).
-- TRANSFERRING means the upstream task has ended: the account's concurrency slot is given back
-- here, not when the clip is stored, because providers count only tasks still generating, and
-- a download or a slow store must not keep the next job from starting.
-- Cost (issue 11): the jobs come from their worker's held table (common_held.lua, held_jobs), not
-- from their records, and their changes (phase, upstream id, history) go back into it, not into
-- their records: the script that takes a job from its worker writes them there (common.lua,
-- held_unload). Claims and create-log settlements are read and written once per account per
-- call; the held entries once per worker per call.
-- ARGV: P now n, then per job: k followed by k names and values (id token phase [upstream]
-- [detail]; a name left out is ''). Returns per job 'OK' or the refusal ('LEASELOST',
-- 'NOTRUNNING <state>', 'OWNED <job>').
local P, now, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ctx = new_ctx(P, now, ARGV[2])
local reqs = {}
local i = 4
for _ = 1, n do
  local k = tonumber(ARGV[i]); i = i + 1
  -- Sized once for the names a change carries.
  local f = {id = false, token = false, phase = false, upstream = false, detail = false}
  for x = i, i + 2 * k - 1, 2 do f[ARGV[x]] = ARGV[x + 1] end
  i = i + 2 * k
  reqs[#reqs + 1] = f
end
local jobs = held_jobs(P, reqs, {'token', 'slot', 'account', 'create_log', 'worker'}, 'mid')

-- Upstream-task claims: `owner:<account>:<bucket>` hashes (task id -> job id), one bucket per
-- two days, each kept until two buckets later; a claim is looked for in the current and the
-- previous bucket, so it is seen for at least two days after it was made.
local BUCKET_MS = CLAIM_BUCKET_MS
local bucket = math.floor(now / BUCKET_MS)
local claims = {}  -- account -> {ids = {task...}, owner = {task -> job}, new = {task, job, ...}}
local claim_order = {}
for x, f in ipairs(reqs) do
  local j = jobs[x]
  local upstream = f.upstream or ''
  if type(j) == 'table' and upstream ~= '' then
    local acc = j.account or ''
    local c = claims[acc]
    if not c then
      c = {ids = {}, seen = {}, owner = {}, new = {}}
      claims[acc] = c
      claim_order[#claim_order + 1] = acc
    end
    if not c.seen[upstream] then
      c.seen[upstream] = true
      c.ids[#c.ids + 1] = upstream
    end
  end
end
local function owner_key(acc, b) return claim_key(P, acc, b) end
for _, acc in ipairs(claim_order) do
  local c = claims[acc]
  local cur = redis.call('HMGET', owner_key(acc, bucket), unpack(c.ids))
  local prev = redis.call('HMGET', owner_key(acc, bucket - 1), unpack(c.ids))
  for k, task in ipairs(c.ids) do c.owner[task] = cur[k] or prev[k] or nil end
end

local settles = {}  -- account -> {now, member, ...}: create-log entries moved to `now`
local out = {}
for x, f in ipairs(reqs) do
  local j = jobs[x]
  local upstream = f.upstream or ''
  local refused = nil
  if type(j) ~= 'table' then
    refused = j
  elseif j.state ~= 'RUNNING' then
    refused = 'NOTRUNNING ' .. tostring(j.state)  -- ended earlier in this call
  end
  -- A job in its worker's held table (layout 3 or 2) keeps its changes there (held_phase); one
  -- read from its record, or held in layout 1, has them written into its record (transition).
  local in_held = type(j) == 'table' and j.held and not j.old_entry
  local extra = {}
  if not refused and upstream ~= '' then
    local c = claims[j.account or '']
    local owner = c.owner[upstream]
    if owner and owner ~= f.id then
      refused = 'OWNED ' .. tostring(owner)
    else
      if not owner then
        c.owner[upstream] = f.id
        c.new[#c.new + 1] = upstream
        c.new[#c.new + 1] = f.id
      end
      if in_held then
        held_set_upstream(j, upstream)
        extra = {'upstream', upstream}
      else
        extra = {'upstream', upstream, 'create_intent', '', 'create_log', ''}
      end
      if j.create_log and j.create_log ~= '' and j.account and j.account ~= '' then
        local s = settles[j.account]
        if not s then s = {}; settles[j.account] = s end
        s[#s + 1] = ARGV[2]  -- `now` as text
        s[#s + 1] = j.create_log
      end
      j.create_log, j.create_intent = false, false
    end
  end
  if refused then
    out[#out + 1] = refused
  else
    if f.phase == 'TRANSFERRING' then
      release_slot(ctx, j.slot)
      j.slot = false
      if not in_held then
        extra[#extra + 1] = 'slot'
        extra[#extra + 1] = ''
      end
    end
    local detail = f.detail or ''
    if in_held then
      held_phase(ctx, j, f.phase, detail, extra)
    else
      transition(ctx, j, 'RUNNING', f.phase, detail, extra)
    end
    j.held_dirty = true
    out[#out + 1] = 'OK'
  end
end
for _, acc in ipairs(claim_order) do
  local c = claims[acc]
  if #c.new > 0 then
    local key = owner_key(acc, bucket)
    redis.call('HSET', key, unpack(c.new))
    -- Relative: `now` is the injected clock, not Redis's.
    redis.call('PEXPIRE', key, (bucket + 2) * BUCKET_MS - now)
  end
end
-- settle_create (common.lua) for the whole call: one ZADD per account.
for acc, s in pairs(settles) do
  redis.call('ZADD', P .. ':acct:' .. acc .. ':creates', 'XX', unpack(s))
end
held_save(P, jobs)
flush(ctx)
return out
