-- Upstream-task claims and the workers' held tables (issue 11), prepended last
-- (queue/lua/PRELUDE): they build on common.lua's records and transitions.

-- Upstream-task claims (phase.lua): `owner:<account>:<bucket>` hashes (task id -> job id), one
-- bucket per CLAIM_BUCKET_MS, each expiring two buckets after its own began.
local CLAIM_BUCKET_MS = 172800000
local function claim_key(P, account, bucket) return P .. ':owner:' .. account .. ':' .. bucket end

-- A worker's held table (issue 11): `wjobs:<worker>` is a hash, job id -> what the worker's
-- writes to that job need (its lease token and the fields transition() reads), written by
-- lease.lua and kept by the scripts the worker's batched writes run (create_permit, phase), so
-- those fence and transition a job without reading its record: one HMGET of the table per
-- worker per call instead of one per job. Every path that takes a job out of RUNNING under its
-- token removes its entry (complete, fail, handback, cancel; reap and register drop the whole
-- table), so an entry whose token matches IS the lease. A token names its worker
-- ("<fence>/<worker>"), so a write finds the table from the token alone.
-- While the worker holds the job, what it records lives only here, not in the job's record: the
-- create intent and create-log member (create_permit.lua), and every phase change (phase.lua:
-- the phase, the upstream id, the given-back slot, and the history entries, `seq` counting
-- them). The record keeps what lease.lua wrote. Whatever takes the job from the worker merges
-- the entry in (held_jobs for complete; held_take for fail, cancel, handback, reap, register)
-- and its transition writes it all into the record (held_unload), so nothing recorded is lost:
-- a reaped job's next lease sees its upstream id and create intent and looks the task up
-- instead of paying for a second create. get.lua merges it in for readers.
-- The entry (issue 11: as one JSON array of 19 fields, decoding it took ~4 us and encoding it
-- ~3.9 us per job and call, timed inside the cost test's scripts: four reads and three writes
-- in a job's life) is
--   "<seq>\31<slot>\31<create_log>\31<create_intent>\31<hot>\31<cold>\31<tail>"
-- where the four fields a worker's writes change are plain (numbers and ids), <hot> and <cold>
-- are JSON arrays of HELD_HOT and HELD_COLD (written by lease.lua, never changed while held:
-- re-written as they were read; <cold>, what only a job's end needs, is decoded only for
-- held_jobs(..., full) or a job with a webhook) and <tail> a JSON array of the upstream id and
-- the history entries not yet in the record (re-encoded only when they change). JSON never
-- holds a raw \31, so one string.match splits an entry. The worker is the table's, not stored. An entry of the layout before (a
-- JSON array of HELD, '[' first) is still read and written as such, and a job held under one
-- writes its phase changes into its record as before (`old_entry`).
local HELD = {'token', 'seq', 'models', 'model', 'batch', 'tenant', 'bill', 'hold', 'secs', 'res',
              'cost', 'webhook', 'parent', 'mbatch', 'slot', 'account', 'create_log', 'worker',
              'create_intent'}
local HELD_HOT = {'token', 'account', 'batch', 'tenant', 'webhook'}
local HELD_COLD = {'models', 'model', 'bill', 'hold', 'secs', 'res', 'cost', 'parent', 'mbatch'}
local HELD_SPLIT = '^' .. string.rep('([^\31]*)\31', 6) .. '(.*)$'

-- A job's `names` fields as a list (a missing field is ''), and such a list back into a job
-- table in `state` (a '' field is false, as read_job gives a missing one).
local function pack_fields(names, job)
  local v = {}
  for i = 1, #names do
    local x = job[names[i]]
    if not x then x = '' end
    v[i] = x
  end
  return v
end

local function unpack_fields(names, id, state, v)
  local job = {id = id, state = state}
  for i = 1, #names do
    local x = v[i]
    if x == '' then x = false end
    job[names[i]] = x
  end
  return job
end

local function held_encode(job)
  if job.old_entry then return cjson.encode(pack_fields(HELD, job)) end
  local hot = job.h_hot or cjson.encode(pack_fields(HELD_HOT, job))
  local cold = job.h_cold or cjson.encode(pack_fields(HELD_COLD, job))
  local tail = job.h_tail
  if not tail and not job.upstream and not job.hist then
    tail = '[""]'
  elseif not tail then
    local t = {job.upstream or ''}
    if job.hist then for k, e in ipairs(job.hist) do t[k + 1] = e end end
    tail = cjson.encode(t)
  end
  return job.seq .. '\31' .. (job.slot or '') .. '\31' .. (job.create_log or '') .. '\31' ..
             (job.create_intent or '') .. '\31' .. hot .. '\31' .. cold .. '\31' .. tail
end

-- The held entry `text` of job `id` in `worker`'s table as a job table (RUNNING); `full`: with
-- HELD_COLD (money, model, parent), which a job's end needs.
local function held_decode(id, text, worker, full)
  if string.byte(text, 1) == 91 then
    local job = unpack_fields(HELD, id, 'RUNNING', cjson.decode(text))
    job.old_entry = true
    return job
  end
  local seq, slot, create_log, intent, hot, cold, tail = string.match(text, HELD_SPLIT)
  local job = unpack_fields(HELD_HOT, id, 'RUNNING', cjson.decode(hot))
  if full or job.webhook then
    local v = cjson.decode(cold)
    for i, n in ipairs(HELD_COLD) do
      local x = v[i]
      if x == nil or x == '' then x = false end
      job[n] = x
    end
  end
  job.seq, job.worker, job.h_hot, job.h_cold, job.h_tail = seq, worker, hot, cold, tail
  job.slot = slot ~= '' and slot
  job.create_log = create_log ~= '' and create_log
  job.create_intent = intent ~= '' and intent
  local t = cjson.decode(tail)
  job.upstream = t[1] ~= '' and t[1]
  if #t > 1 then
    local hist = {}
    for k = 2, #t do hist[k - 1] = t[k] end
    job.hist = hist
  end
  return job
end

local function token_worker(token) return string.match(token or '', '^%d+/(.+)$') end

-- The jobs of a call of worker writes (`reqs`: each with id and token), in order: from their
-- workers' held tables (the entry's `held` is true), else read from the record (`more`: the
-- fields the script needs besides JOB_READ) and refused unless RUNNING under that token
-- ('NOTRUNNING <state>', 'LEASELOST'). Requests for the same job share one table, so a second
-- change of it in the call sees the first. `full`: the call may end jobs (held_decode).
local function held_jobs(P, reqs, more, full)
  local groups, order = {}, {}
  for i, f in ipairs(reqs) do
    local w = token_worker(f.token)
    if w then
      local g = groups[w]
      if not g then g = {ids = {}, at = {}}; groups[w] = g; order[#order + 1] = w end
      g.ids[#g.ids + 1] = f.id
      g.at[#g.at + 1] = i
    end
  end
  local by_id, out = {}, {}
  for _, w in ipairs(order) do
    local g = groups[w]
    local r = redis.call('HMGET', P .. ':wjobs:' .. w, unpack(g.ids))
    for k, i in ipairs(g.at) do
      local id = g.ids[k]
      if r[k] and not by_id[id] then
        local j = held_decode(id, r[k], w, full)
        j.held = true
        by_id[id] = j
      end
    end
  end
  for i, f in ipairs(reqs) do
    local j = by_id[f.id]
    if j == nil then
      j = read_job(P, f.id, more) or false
      by_id[f.id] = j
    end
    if not j or j.state ~= 'RUNNING' then
      out[i] = 'NOTRUNNING ' .. tostring(j and j.state)
    elseif j.token ~= f.token then
      out[i] = 'LEASELOST'
    else
      out[i] = j
    end
  end
  return out
end

-- Writes back the held entries of `jobs` changed by this call (`j.held_dirty`), one HSET per
-- worker.
local function held_save(P, jobs)
  local by_worker, order = {}, {}
  for _, j in ipairs(jobs) do
    if type(j) == 'table' and j.held and j.held_dirty and j.state == 'RUNNING' then
      j.held_dirty = false
      local w = j.worker
      local l = by_worker[w]
      if not l then l = {}; by_worker[w] = l; order[#order + 1] = w end
      l[#l + 1] = j.id
      l[#l + 1] = held_encode(j)
    end
  end
  for _, w in ipairs(order) do redis.call('HSET', P .. ':wjobs:' .. w, unpack(by_worker[w])) end
end

-- The held entry of a RUNNING job read from its record (`job.worker`, `job.token`), or nil.
local function held_entry(P, job)
  if not job.worker or job.worker == '' or not job.token or job.token == '' then return nil end
  local text = redis.call('HGET', P .. ':wjobs:' .. job.worker, job.id)
  if not text then return nil end
  local h = held_decode(job.id, text, job.worker)
  if h.token ~= job.token then return nil end
  return h
end

-- A RUNNING job read from its record, taken from its worker: `h` (its held entry, or nil when
-- it has none under the job's token) is merged in, and the job's next transition writes the
-- held fields and history into the record (held_unload).
local function held_take(job, h)
  if h then
    job.seq, job.slot = h.seq, h.slot
    job.create_intent, job.create_log = h.create_intent, h.create_log
    if h.upstream ~= nil then job.upstream = h.upstream end
    job.hist, job.held_take = h.hist, true
  end
  return job
end
