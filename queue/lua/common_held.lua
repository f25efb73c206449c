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
-- The entry is (layout 3, issue 11)
--   "\30<token>\31<account>\31<seq>\31<slot>\31<create_log>\31<create_intent>\31<upstream>\31
--    <batch>\31<tenant>\31<hook>\31<models>\31<model>\31<bill>\31<hold>\31<secs>\31<res>\31
--    <cost>\31<parent>\31<mbatch>" then "\31<history entry>" for each entry not yet in the record
-- <upstream>, <hook> (the job's webhook) and each history entry are free text ('' for no
-- upstream id or webhook), written as they are unless they hold a \31 or begin with '"', in
-- which case as a JSON string (which never holds a raw \31; held_text). Everything else is
-- plain: numbers, ids admission checks, the config's ids; held_encode writes an entry whose
-- plain fields hold a \31 in layout 1 instead. The fields a worker's writes change come first:
-- one anchored string.match reads them, what follows is re-written as it was read (its part
-- from <batch> on, `h_rest`) and a history entry is appended to it as text. Only a job's end
-- decodes the rest (its money, model and group). Measured (callgrind, issue 11): held_jobs for
-- a phase change, 50 jobs a call, ~48k instructions a job with layout 2 (JSON hot, cold and
-- tail parts), ~27k with this one; one entry's read (held_parse) ~12k for a create permit and
-- ~18k for a phase change, where a whole layout-2 read is ~53k.
-- Layouts before are still read: 1 (a JSON array of HELD, '[' first; such a job keeps writing
-- its phase changes into its record, `old_entry`) and 2 ("<seq>\31<slot>\31<create_log>\31
-- <create_intent>\31<hot JSON>\31<cold JSON>\31<tail JSON>", a digit first), which is re-written
-- in layout 3 by the next write. The worker is the table's, not stored.
local HELD = {'token', 'seq', 'models', 'model', 'batch', 'tenant', 'bill', 'hold', 'secs', 'res',
              'cost', 'webhook', 'parent', 'mbatch', 'slot', 'account', 'create_log', 'worker',
              'create_intent'}
local HELD_HOT = {'token', 'account', 'batch', 'tenant', 'webhook'}
local HELD_COLD = {'models', 'model', 'bill', 'hold', 'secs', 'res', 'cost', 'parent', 'mbatch'}
-- Written out: a function library's top level runs before the string library is reachable
-- (Redis loads it with only redis.register_function and redis.log in scope).
local HELD_SPLIT = '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31(.*)$'
-- token account seq slot create_log create_intent upstream, then where <batch> begins.
local HELD_HEAD = '^\30([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31()'
-- On `h_rest`: batch tenant hook (what a phase change's event and webhook need).
local HELD_MID = '^([^\31]*)\31([^\31]*)\31([^\31]*)\31'
-- On `h_rest`: batch tenant hook and HELD_COLD, then where the history entries begin.
local HELD_REST = '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)()'
-- On `h_rest`: the model (after batch tenant hook models).
local HELD_REST_MODEL = '^[^\31]*\31[^\31]*\31[^\31]*\31[^\31]*\31([^\31]*)'

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

-- Free text in a held entry (see above), and back.
local function held_text(x)
  if string.byte(x, 1) == 34 or string.find(x, '\31', 1, true) then return cjson.encode(x) end
  return x
end
local function held_untext(x)
  if string.byte(x, 1) == 34 then return cjson.decode(x) end
  return x
end

local function held_encode(job)
  if job.old_entry then return cjson.encode(pack_fields(HELD, job)) end
  local rest = job.h_rest
  if not rest then
    local v = pack_fields(HELD_COLD, job)
    -- A plain field holding the separator would shift every field after it: such a job's entry
    -- is written in layout 1 (its phase changes then go to its record).
    local plain = table.concat(v) .. job.id .. (job.token or '') .. (job.account or '') ..
                      (job.slot or '') .. (job.batch or '') .. (job.tenant or '') ..
                      (job.create_log or '') .. (job.create_intent or '')
    if string.find(plain, '\31', 1, true) then
      job.old_entry = true
      return cjson.encode(pack_fields(HELD, job))
    end
    local parts = {job.batch or '', job.tenant or '', job.webhook and held_text(job.webhook) or '',
                   table.concat(v, '\31')}
    if job.hist then
      for _, e in ipairs(job.hist) do parts[#parts + 1] = held_text(e) end
    end
    rest = table.concat(parts, '\31')
    job.h_rest, job.h_add = rest, nil
    if not job.h_up then job.h_up = job.upstream and held_text(job.upstream) or '' end
  end
  return '\30' .. job.token .. '\31' .. (job.account or '') .. '\31' .. job.seq .. '\31' ..
             (job.slot or '') .. '\31' .. (job.create_log or '') .. '\31' ..
             (job.create_intent or '') .. '\31' .. job.h_up .. '\31' .. rest .. (job.h_add or '')
end

-- Appends the history entry `entry` to a held job.
local function held_push_hist(job, entry)
  if job.hist then job.hist[#job.hist + 1] = entry end
  if job.h_rest then
    job.h_add = (job.h_add or '') .. '\31' .. held_text(entry)
  elseif not job.hist then
    job.hist = {entry}
  end
end

-- Sets a held job's upstream id ('' for none).
local function held_set_upstream(job, upstream)
  job.upstream = upstream ~= '' and upstream
  job.h_up = upstream ~= '' and held_text(upstream) or ''
end

-- Layout 2 (see above), read whole; its next write is in layout 3.
local function held_decode_v2(id, text, worker)
  local seq, slot, create_log, intent, hot, cold, tail = string.match(text, HELD_SPLIT)
  if not seq then error('held entry of job ' .. id .. ' (worker ' .. worker .. ') is malformed') end
  local job = unpack_fields(HELD_HOT, id, 'RUNNING', cjson.decode(hot))
  local v = cjson.decode(cold)
  for i, n in ipairs(HELD_COLD) do
    local x = v[i]
    if x == nil or x == '' then x = false end
    job[n] = x
  end
  job.seq, job.worker = seq, worker
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

local function held_malformed(id, worker)
  error('held entry of job ' .. id .. ' (worker ' .. worker .. ') is malformed')
end

-- The held entry `text` of job `id` in `worker`'s table as a job table (RUNNING). `level`:
-- 'head' reads only what a create permit needs (token, account, seq, slot, create intent and
-- log); 'mid' also the batch, tenant and webhook (a phase change); anything else the whole
-- entry, with its upstream id, money, model, group and history (a job's end, held_take).
local function held_parse(id, text, worker, level)
  local b = string.byte(text, 1)
  if b == 91 then
    local job = unpack_fields(HELD, id, 'RUNNING', cjson.decode(text))
    job.old_entry = true
    return job
  elseif b ~= 30 then
    return held_decode_v2(id, text, worker)
  end
  local token, account, seq, slot, log, intent, up, at = string.match(text, HELD_HEAD)
  if not at then held_malformed(id, worker) end
  local rest = string.sub(text, at)
  -- One constructor per level: the table is sized once for the fields a write reads and sets.
  if level == 'head' then
    return {id = id, state = 'RUNNING', token = token, account = account ~= '' and account,
            seq = seq, slot = slot ~= '' and slot, create_log = log ~= '' and log,
            create_intent = intent ~= '' and intent, h_up = up, h_rest = rest, worker = worker,
            held = true, h_add = nil}
  end
  if level == 'mid' then
    local batch, tenant, hook = string.match(rest, HELD_MID)
    if not batch then held_malformed(id, worker) end
    local job = {id = id, state = 'RUNNING', token = token, account = account ~= '' and account,
                 seq = seq, slot = slot ~= '' and slot, create_log = log ~= '' and log,
                 create_intent = intent ~= '' and intent, h_up = up, h_rest = rest,
                 worker = worker, held = true, h_add = nil, batch = batch ~= '' and batch,
                 tenant = tenant ~= '' and tenant, webhook = false, upstream = nil}
    if hook ~= '' then
      job.webhook = held_untext(hook)
      job.model = string.match(rest, HELD_REST_MODEL)  -- the webhook's data names it
    end
    return job
  end
  local batch, tenant, hook, models, model, bill, hold, secs, res, cost, parent, mbatch, hist_at =
      string.match(rest, HELD_REST)
  if not hist_at then held_malformed(id, worker) end
  local job = {id = id, state = 'RUNNING', token = token, account = account ~= '' and account,
               seq = seq, slot = slot ~= '' and slot, create_log = log ~= '' and log,
               create_intent = intent ~= '' and intent, h_up = up, h_rest = rest,
               worker = worker, held = true, h_add = nil, batch = batch ~= '' and batch,
               tenant = tenant ~= '' and tenant, webhook = hook ~= '' and held_untext(hook),
               upstream = up ~= '' and held_untext(up), models = models ~= '' and models,
               model = model ~= '' and model, bill = bill ~= '' and bill,
               hold = hold ~= '' and hold, secs = secs ~= '' and secs, res = res ~= '' and res,
               cost = cost ~= '' and cost, parent = parent ~= '' and parent,
               mbatch = mbatch ~= '' and mbatch, hist = nil, money_dirty = nil, held_dirty = nil}
  -- The history entries, \31 before each.
  local n = #rest
  if hist_at <= n then
    local hist = {}
    while hist_at <= n do
      local next_at = string.find(rest, '\31', hist_at + 1, true) or n + 1
      hist[#hist + 1] = held_untext(string.sub(rest, hist_at + 1, next_at - 1))
      hist_at = next_at
    end
    job.hist = hist
  end
  return job
end

local function held_decode(id, text, worker) return held_parse(id, text, worker, 'full') end

-- A phase change of a job its worker holds (phase.lua): RUNNING stays, so only the job's seq,
-- its history entry (appended to the held entry, which held_save writes), the event and the
-- webhook; no counter, index or record changes (common.lua, transition, does those for a change
-- of state). `extra`: what else the change set, for the webhook's data.
local function held_phase(ctx, job, phase, detail, extra)
  local seq, seq_s = next_seq(job.seq)
  held_push_hist(job, 'RUNNING|' .. phase .. '|' .. ctx.now_s .. '|' .. detail)
  job.seq, job.held_dirty = seq_s, true
  if job.webhook then webhook_note(ctx, job, 'RUNNING', phase, seq, detail, extra) end
  ctx.events[#ctx.events + 1] = job.id .. '\31' .. seq_s .. '\31RUNNING\31' .. phase .. '\31' ..
                                 ctx.now_s .. '\31' .. (job.batch or '') .. '\31' ..
                                 (job.tenant or '') .. '\31' .. detail
end

local function token_worker(token) return string.match(token or '', '^%d+/(.+)$') end

-- The jobs of a call of worker writes (`reqs`: each with id and token), in order: from their
-- workers' held tables (the entry's `held` is true), else read from the record (`more`: the
-- fields the script needs besides JOB_READ) and refused unless RUNNING under that token
-- ('NOTRUNNING <state>', 'LEASELOST'). Requests for the same job share one table, so a second
-- change of it in the call sees the first. `level`: what of a held entry the call needs
-- (held_parse).
local function held_jobs(P, reqs, more, level)
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
        local j = held_parse(id, r[k], w, level)
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

-- A worker's held table is kept a hash table: as a listpack (Redis's encoding for a hash while
-- it has at most hash-max-listpack-entries fields, 512 on Debian's 7.0, each at most
-- hash-max-listpack-value bytes) every lookup and update scans it, which for a worker holding
-- 200 jobs cost each of its batched writes ~25k instructions a job more (callgrind, issue 11).
-- One field longer than any deployment's hash-max-listpack-value (reelq asks for 1024) turns
-- it into a hash table for as long as the table exists. Its name is no job id (admission
-- allows no control character); reap.lua and register.lua find no job under it, lease.lua's
-- lost-answer path passes it by, stats.lua does not count it.
local HELD_PAD = '\30hashtable'

-- After jobs were added to a held table (lease.lua, dispatch.lua): pads it if it is still a
-- listpack. Only an add can make a new table; the writes that change held entries
-- (held_save) find the table already padded, so they do not ask (one command a call less: at
-- one or two jobs a call, as with real latencies, that is ~4k instructions a call).
local function held_pad(key)
  if redis.call('OBJECT', 'ENCODING', key) == 'listpack' then
    -- string.rep copies its text once a repeat: 64 of 64 bytes, not 4,096 of one.
    redis.call('HSET', key, HELD_PAD, string.rep(string.rep('.', 64), 64))
  end
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
  for _, w in ipairs(order) do
    redis.call('HSET', P .. ':wjobs:' .. w, unpack(by_worker[w]))
  end
end

-- The held entry of a RUNNING job read from its record (`job.worker`, `job.token`), or nil.
local function held_entry(P, job)
  if not job.worker or job.worker == '' or not job.token or job.token == '' then return nil end
  local text = redis.call('HGET', P .. ':wjobs:' .. job.worker, job.id)
  if not text then return nil end
  local h = held_decode(job.id, text, job.worker)
  if h.token ~= job.token then return nil end
  -- Layout 1 holds no upstream id (its phase changes went to the record): the record's, or
  -- held_take would write '' over it and the next lease would pay for a second create.
  if h.old_entry and h.upstream == nil then
    h.upstream = redis.call('HGET', jkey(P, job.id), 'upstream') or ''
  end
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
