-- Retention: finished jobs whose state was reached at or before `cutoff` leave Redis, at most
-- `max` per call, with everything that names them: the job hash (its history and errors are
-- inside), the state, batch and model index entries, its tenant's submit call once its last
-- job goes (and the all-jobs and per-job tenant indexes of the previous layout), the claim on
-- its upstream task (phase.lua's owner:<account>:<bucket> hash, while it still names this job:
-- a bucket lives two to four days, so under a shorter retention the claims would outlive their
-- jobs and Redis would hold days of them whatever the retention), and the batch record when its
-- last job goes (its owner's claim on the batch id lapses a grace period later), and a tenant
-- from `tenants` when its last job goes. Idempotency keys expire on their own clock; the clip and its sidecar in the
-- store are not Redis's to remove.
-- ARGV: P now cutoff max
-- Returns {jobs_removed, batches_removed, more(0|1)}.
local P, cutoff, max = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local retention_ms = tonumber(ARGV[2]) - cutoff
local CLAIM_GRACE_MS = 600000
-- Events older than the retention describe jobs that are gone or about to go: the stream is
-- bounded by time as well as by its length cap (flush in common.lua).
redis.call('XTRIM', P .. ':events', 'MINID', '~', string.format('%d', cutoff) .. '-0')
-- Jobs kept past their due time (a group's children while the group is here, a group while a
-- child runs) stay where they are in their state's index (a listing by state pages through it,
-- each job once, in the order they entered the state): `retain_hold` holds each such id with
-- the time until which the sweep passes it over. An id leaves it when its job leaves Redis.
-- The due head is read past the ids held, a page at a time: a call reads as many entries as
-- are held at the head, plus its chunk.
local now = tonumber(ARGV[2])
local hold_key = P .. ':retain_hold'
local holding = redis.call('ZCARD', hold_key) > 0
local due, due_state = {}, {}
local more = 0
for _, state in ipairs({'SUCCEEDED', 'FAILED', 'CANCELLED'}) do
  local key, offset = P .. ':state:' .. state, 0
  while #due < max do
    local n = max - #due
    if holding then n = 1000 end
    local page = redis.call('ZRANGEBYSCORE', key, '-inf', cutoff, 'LIMIT', offset, n)
    local held_until = {}
    if holding and #page > 0 then held_until = redis.call('ZMSCORE', hold_key, unpack(page)) end
    for k, id in ipairs(page) do
      if #due >= max then break end
      local u = held_until[k]
      if not u or tonumber(u) <= now then
        due[#due + 1] = id
        due_state[id] = state
      end
    end
    if #page < n then break end
    offset = offset + n
  end
end
if #due == 0 and redis.call('SCARD', P .. ':batch_retrim') == 0 then return {0, 0, 0} end
if #due >= max then more = 1 end
-- What the removal needs of each job, read once.
local READ = {'tenant', 'batch', 'model', 'worker', 'account', 'upstream', 'created', 'parent',
              'children', 'state', 'updated'}
-- A group's children leave with the group, not before it: its join or contact sheet reads their
-- records, and so does a RetryJob of the group, however long after they ended (a storyboard of
-- a hundred shots outlasts a short retention). A finished group takes its finished children
-- along; a child whose group is still here is kept a retention period more (`retain_hold`).
-- A group that ended while a child still runs (a storyboard failed by one shot while another
-- retries) stays, children and all, until that child ends: the child's money and progress are
-- counted against the group's batch (mbatch), whose record would otherwise go with the group
-- and come back as a stray hash of one field.
-- The due jobs are taken in order, each group with its children, until the call holds
-- MAX_IDS: the rest waits for the next call (`more`). Redis's Lua unpacks at most ~8,000
-- values into one command, and 500 due groups of 64 shots would be 32,000 ids.
local MAX_IDS = 4000
-- A command naming many ids is sent in slices of SLICE (an even number: ZADD's pairs).
local SLICE = 1000
local function in_slices(cmd, key, list)
  for from = 1, #list, SLICE do
    local to = math.min(#list, from + SLICE - 1)
    if key then
      redis.call(cmd, key, unpack(list, from, to))
    else
      redis.call(cmd, unpack(list, from, to))
    end
  end
end
local ids, state_of, rec = {}, {}, {}
local removing, held = {}, {}
local function take(id, state, r)
  ids[#ids + 1] = id
  state_of[id], rec[id], removing[id] = state, r, true
end
for k = 1, #due do
  local group = due[k]
  if not removing[group] then
    if #ids >= MAX_IDS then
      more = 1
      break
    end
    local r = redis.call('HMGET', jkey(P, group), unpack(READ))
    local children = r[9]
    local finished, running = {}, false
    if children and children ~= '' then
      for child in string.gmatch(children, '[^,]+') do
        if not removing[child] then
          local c = redis.call('HMGET', jkey(P, child), unpack(READ))
          local st = c[10]
          if st == 'SUCCEEDED' or st == 'FAILED' or st == 'CANCELLED' then
            -- A child that ended within the retention (after the group came due: it ran on, or
            -- a RetryJob ran it again) keeps the group, as a running one does: it stays its
            -- full retention. When it ended is its record's `updated` (transition() writes it
            -- at every change), not its score in the state index, which a sweep that kept it
            -- moved to its own time.
            local at = tonumber(c[11])
            if not at then at = tonumber(redis.call('ZSCORE', P .. ':state:' .. st, child)) end
            if at and at > cutoff then
              running = true
            else
              finished[#finished + 1] = {child, st, c}
            end
          elseif st then
            running = true
          end
        end
      end
    end
    if running then
      take(group, due_state[group], r)
      held[group], removing[group] = true, nil
    elseif #ids > 0 and #ids + 1 + #finished > MAX_IDS then
      more = 1
      break
    else
      take(group, due_state[group], r)
      for _, f in ipairs(finished) do take(f[1], f[2], f[3]) end
    end
  end
end
do
  local going, group_here, hold = {}, {}, {}
  for _, id in ipairs(ids) do
    local parent = rec[id][8]
    local stays = held[id] or false
    if not stays and parent and not removing[parent] and parent ~= '' then
      stays = group_here[parent]
      if stays == nil then
        stays = redis.call('EXISTS', jkey(P, parent)) == 1
        group_here[parent] = stays
      end
    end
    if stays then
      hold[#hold + 1] = now + retention_ms
      hold[#hold + 1] = id
    else
      going[#going + 1] = id
    end
  end
  in_slices('ZADD', hold_key, hold)
  ids = going
end
local groups, order = {}, {}
local function put(key, id)
  local g = groups[key]
  if not g then g = {}; groups[key] = g; order[#order + 1] = key end
  g[#g + 1] = id
end
local batches, batch_order = {}, {}
local keys = {}
local claims, claim_order = {}, {}  -- account -> {tasks = {...}, jobs = {...}}
local calls, call_order = {}, {}    -- tenant \31 created -> {tenant, created, ids = {...}}
for _, id in ipairs(ids) do
  local h = rec[id]
  keys[#keys + 1] = jkey(P, id)
  if h[5] and h[5] ~= '' and h[6] and h[6] ~= '' then
    local c = claims[h[5]]
    if not c then
      c = {tasks = {}, jobs = {}}
      claims[h[5]] = c
      claim_order[#claim_order + 1] = h[5]
    end
    c.tasks[#c.tasks + 1] = h[6]
    c.jobs[#c.jobs + 1] = id
  end
  put(P .. ':jobs', id)
  if holding then put(hold_key, id) end
  put(P .. ':state:' .. state_of[id], id)
  if h[1] and h[1] ~= '' then
    put(P .. ':tenant:' .. h[1] .. ':jobs', id)  -- the previous layout's per-job entry
    if h[7] and h[7] ~= '' then
      local g = h[1] .. '\31' .. h[7]
      local c = calls[g]
      if not c then
        c = {tenant = h[1], created = h[7], ids = {}}
        calls[g] = c
        call_order[#call_order + 1] = g
      end
      c.ids[#c.ids + 1] = id
    end
  end
  if h[3] and h[3] ~= '' then put(P .. ':model:' .. h[3] .. ':jobs', id) end
  -- A cancel pushed to a worker that never took it (it died): nothing is left to cancel.
  if state_of[id] == 'CANCELLED' and h[4] and h[4] ~= '' then
    redis.call('LREM', P .. ':wcancel:' .. h[4], 0, id)
  end
  if h[2] and h[2] ~= '' then
    put(P .. ':batch:' .. h[2] .. ':jobs', id)
    if not batches[h[2]] then batches[h[2]] = {}; batch_order[#batch_order + 1] = h[2] end
    local removed = batches[h[2]]
    removed[#removed + 1] = id
  end
end
in_slices('DEL', nil, keys)
-- The claims, per account: looked for in the two buckets still alive (the claim was made when
-- the job's upstream id was stored, before it ended), removed where they still name the job.
local bucket = math.floor(now / CLAIM_BUCKET_MS)
for _, acc in ipairs(claim_order) do
  local c = claims[acc]
  for b = bucket - 1, bucket do
    local key = claim_key(P, acc, b)
    local owners = redis.call('HMGET', key, unpack(c.tasks))
    local mine = {}
    for k, task in ipairs(c.tasks) do
      if owners[k] == c.jobs[k] then mine[#mine + 1] = task end
    end
    if #mine > 0 then redis.call('HDEL', key, unpack(mine)) end
  end
end
for _, key in ipairs(order) do in_slices('ZREM', key, groups[key]) end
-- A tenant's submit calls (submit.lua): each counts its jobs still in Redis (#<call> in
-- `tenant:<t>:callids`) and leaves `tenant:<t>:calls` with its last. A job's call is the one
-- of its tenant scored by its `created` (the call's time); when several calls share that
-- millisecond, the one whose ids name it.
for _, g in ipairs(call_order) do
  local c = calls[g]
  local base = P .. ':tenant:' .. c.tenant
  local names = redis.call('ZRANGEBYSCORE', base .. ':calls', c.created, c.created)
  local removed = {}
  if #names == 1 then
    removed[names[1]] = #c.ids
  elseif #names > 1 then
    local call_of = {}
    local lists = redis.call('HMGET', base .. ':callids', unpack(names))
    for k, name in ipairs(names) do
      for id in string.gmatch(lists[k] or '', '[^,]+') do call_of[id] = name end
    end
    for _, id in ipairs(c.ids) do
      local name = call_of[id]
      if name then removed[name] = (removed[name] or 0) + 1 end
    end
  end
  for name, k in pairs(removed) do
    if redis.call('HINCRBY', base .. ':callids', '#' .. name, -k) <= 0 then
      redis.call('ZREM', base .. ':calls', name)
      redis.call('HDEL', base .. ':callids', name, '#' .. name)
    end
  end
end
-- A tenant none of whose jobs is left in Redis leaves `tenants` (submit.lua adds it back with its
-- next call), so the unfiltered listing, which merges every tenant's calls, does not visit it.
local emptied = {}
for _, g in ipairs(call_order) do
  local tenant = calls[g].tenant
  local base = P .. ':tenant:' .. tenant
  if not emptied[tenant] and redis.call('ZCARD', base .. ':calls') == 0 and
      redis.call('EXISTS', base .. ':jobs') == 0 then
    emptied[tenant] = true
    redis.call('SREM', P .. ':tenants', tenant)
  end
end
-- A batch's ids list (submit.lua): the ids of removed jobs leave its head, counted in the
-- batch's `ids_trimmed` (list.lua's positions are absolute); a removed job's id behind a job
-- that is still there is blanked where it stands ('' keeps the positions) when it is among the
-- first SEEK_MAX entries, else it stays until the head reaches it (listing skips it: its job is
-- gone). The first SEEK_MAX entries are read once, blanked and trimmed in Lua and written back
-- whole (LTRIM, then LPUSH of what stays), so a call costs a few commands per batch however
-- many of its jobs went and in whatever order they ended (jobs that end in the same
-- millisecond leave in id order, not in submit order). At most TRIM_MAX entries per batch per
-- call leave the head, the rest on `batch_retrim` for the next call. The batch record goes
-- when neither its list nor its previous layout's sorted set holds anything.
local TRIM_MAX, SEEK_MAX = 5000, 2000
for _, batch in ipairs(redis.call('SMEMBERS', P .. ':batch_retrim')) do
  if not batches[batch] then batches[batch] = {}; batch_order[#batch_order + 1] = batch end
end
local gone = 0
for _, batch in ipairs(batch_order) do
  local b = P .. ':batch:' .. batch
  local list = b .. ':ids'
  local removed_now = {}
  for _, id in ipairs(batches[batch]) do removed_now[id] = true end
  local dropped, blocked = 0, false
  while dropped < TRIM_MAX and not blocked do
    local window = redis.call('LRANGE', list, 0, SEEK_MAX - 1)
    local n = #window
    if n == 0 then break end
    local blanked = false
    for k = 1, n do
      if removed_now[window[k]] then
        removed_now[window[k]] = nil
        window[k] = ''
        blanked = true
      end
    end
    -- The dead head: blanks, and ids whose job an earlier call removed past the window.
    local dead = 0
    while dead < n do
      local id = window[dead + 1]
      if id ~= '' and redis.call('EXISTS', jkey(P, id)) == 1 then
        blocked = true
        break
      end
      dead = dead + 1
    end
    if dead > 0 or blanked then
      redis.call('LTRIM', list, n, -1)
      local keep = {}
      for k = n, dead + 1, -1 do keep[#keep + 1] = window[k] end
      if #keep > 0 then redis.call('LPUSH', list, unpack(keep)) end
    end
    dropped = dropped + dead
  end
  if redis.call('ZCARD', b .. ':jobs') == 0 and redis.call('LLEN', list) == 0 then
    redis.call('DEL', b, b .. ':jobs', list)
    redis.call('SREM', P .. ':batch_retrim', batch)
    -- Its owner's claim on the id (auth_claim_batch.lua) is not deleted with it but lapses
    -- CLAIM_GRACE_MS later: a submit to the batch may be between its claim's check and its jobs
    -- being stored (uploading input images), and submit.lua's PERSIST of the claim then keeps
    -- it; deleted at once, the new jobs would be in a batch no tenant owns, which another
    -- tenant could claim. Under a retention shorter than the grace, the retention.
    redis.call('PEXPIRE', P .. ':auth:batch:' .. batch,
               math.max(1000, math.min(retention_ms, CLAIM_GRACE_MS)))
    gone = gone + 1
  else
    if dropped > 0 then redis.call('HINCRBY', b, 'ids_trimmed', dropped) end
    if dropped >= TRIM_MAX and not blocked then
      redis.call('SADD', P .. ':batch_retrim', batch)
      more = 1
    else
      redis.call('SREM', P .. ':batch_retrim', batch)
    end
  end
end
return {#ids, gone, more}
