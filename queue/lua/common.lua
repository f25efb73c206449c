-- Shared helpers: with the prelude's other parts (in the order queue/lua/PRELUDE names them) the
-- top of the queue's function library, whose functions are the scripts (queue/CMakeLists.txt).
-- Defined once, when Redis loads the library; the top level may use no library function
-- (Redis loads a library with only redis.register_function and redis.log in scope).
-- All keys of a deployment share one hash tag: P = "<prefix>:{q}".
-- Cost rules (issue 11): a script reads each job it touches with one HMGET (the fields it needs,
-- named in JOB_READ) and writes it with one HSET; everything shared (batch counters, per-model
-- depth, the event stream) is gathered in a `ctx` and written once per call by `flush`.
local function jkey(P, id) return P .. ':job:' .. id end

-- The fields a transition needs besides what the caller checks: `seq` numbers the job's
-- transitions, `models`/`model` feed the depth counters, `batch` the batch counters, `tenant`
-- the event, `webhook` webhook_note (common_webhook.lua).
-- `bill`/`hold`/`secs`/`res`/`cost`: the job's money (wallet.lua section below).
-- `parent`: a group's child (issue 13) tells its group when it ends (group_child_ended);
-- `mbatch`: the batch its money counts against (its parent's).
local JOB_READ = {'state', 'seq', 'models', 'model', 'batch', 'tenant', 'bill', 'hold', 'secs',
                  'res', 'cost', 'webhook', 'parent', 'mbatch'}

-- Reads `id` with the transition fields plus `more`; returns a table by field name (false for
-- a missing field) or nil when the job does not exist.
local function read_job(P, id, more)
  local names = {}
  for i = 1, #JOB_READ do names[i] = JOB_READ[i] end
  if more then for i = 1, #more do names[#names + 1] = more[i] end end
  local values = redis.call('HMGET', jkey(P, id), unpack(names))
  if not values[1] then return nil end
  local job = {id = id}
  for i = 1, #names do job[names[i]] = values[i] end
  -- submit.lua stores no `seq` for a job it puts in a dispatch queue (its seq is 1, and it is
  -- in no state index: `unindexed`); a record of the layout before holds it.
  if not job.seq then job.seq, job.unindexed = '1', true end
  return job
end

-- The whole record of `id` as a job table, or nil when the job does not exist; a missing field
-- is nil (read_job gives false). Dispatch and lease need most of a record: HGETALL walks the
-- hash once, where an HMGET of the ~27 fields they use looks each name up and hands Lua a value
-- for every absent one (callgrind: 72,000 instructions for that HMGET against 42,000).
local function read_record(P, id)
  -- As a RESP3 map Redis builds the table itself, cheaper than a Lua loop over the flat reply
  -- (callgrind: dispatch + lease 348.3k -> 342.3k instructions a job).
  redis.setresp(3)
  local r = redis.call('HGETALL', jkey(P, id))
  redis.setresp(2)
  local job = r.map
  if next(job) == nil then return nil end
  job.id = id
  -- webhook_note tells a read job (false: none) from submit.lua's new one (nil).
  if job.webhook == nil then job.webhook = false end
  if job.seq == nil then job.seq, job.unindexed = '1', true end  -- as read_job
  return job
end

-- A job's place in its tenant's dispatch queue `pending:<t>`: JobStore::PendingScore of its
-- priority, start deadline and created, in the same double arithmetic (exact below 2^53).
-- submit.lua stores no `score`; a record of the layout before holds it, and it wins. Read the
-- job with SCORE_READ.
local SCORE_READ = {'score', 'priority', 'start_deadline', 'created'}
local function queue_score(job)
  if job.score then return job.score end
  local p = math.max(-100, math.min(100, tonumber(job.priority) or 0))
  local deadline = tonumber(job.start_deadline) or 0
  local when = deadline > 0 and deadline or (tonumber(job.created) or 0) + 8796093022208
  return (100 - p) * 17592186044416 + when
end

-- `now_s`: `now` as text, made once. Lua turns a number into text with sprintf (%.14g) each time
-- it is concatenated or passed to redis.call: ~0.3 us for a time in milliseconds, ~0.2 for a seq,
-- several times per transition (issue 11, measured in Redis's Lua). A script passes `now_text`,
-- its ARGV text of `now` (the caller's integer milliseconds), so not even the one formatting is
-- paid (~5k instructions a call). The tables only some calls need (wallets, prices, keys,
-- splits) are made at their first use: ~1.4k instructions a table a call, which at the one or two
-- jobs a call of real latencies is paid per job.
local function new_ctx(P, now, now_text)
  return {P = P, now = now, now_s = now_text or tostring(now), counters = {}, events = {}}
end

-- Listing and retention indexes (queue/README.md): `state:<STATE>` holds every job in that
-- state, `model:<m>:jobs` every job dispatched to m (until it goes back to PENDING), each scored
-- by when the job entered; `tenant:<t>:jobs` every job of t by submit time. transition() notes a
-- job's first and last state and model of the call, flush_indexes moves it once.
local function note_move(ctx, job, from_state, to_state, to_model)
  if not ctx.moves then ctx.moves, ctx.move_ids = {}, {} end
  local m = ctx.moves[job.id]
  if not m then
    m = {state = from_state, model = job.model or '', tenant = job.tenant or '',
         unindexed = job.unindexed}
    ctx.moves[job.id] = m
    ctx.move_ids[#ctx.move_ids + 1] = job.id
  end
  m.to_state, m.to_model = to_state, to_model or ''
end

local function flush_indexes(ctx)
  if not ctx.moves then return end
  local P, now = ctx.P, ctx.now_s  -- text: a number would be formatted for every ZADD
  local rem, add, keys = {}, {}, {}
  local function put(t, key, a, b)
    local l = t[key]
    if not l then l = {}; t[key] = l; keys[#keys + 1] = key end
    l[#l + 1] = a
    if b then l[#l + 1] = b end
  end
  for _, id in ipairs(ctx.move_ids) do
    local m = ctx.moves[id]
    if m.state ~= m.to_state then
      if m.state == '' then
        if m.tenant ~= '' then put(add, P .. ':tenant:' .. m.tenant .. ':jobs', now, id) end
      elseif not m.unindexed then
        put(rem, P .. ':state:' .. m.state, id)
      end
      put(add, P .. ':state:' .. m.to_state, now, id)
    end
    if m.model ~= m.to_model then
      if m.model ~= '' then put(rem, P .. ':model:' .. m.model .. ':jobs', id) end
      if m.to_model ~= '' then put(add, P .. ':model:' .. m.to_model .. ':jobs', now, id) end
    end
  end
  for _, key in ipairs(keys) do
    if rem[key] then redis.call('ZREM', key, unpack(rem[key])) end
    if add[key] then redis.call('ZADD', key, unpack(add[key])) end
  end
  ctx.moves, ctx.move_ids = nil, nil
end

-- Fair dispatch (dispatch.lua) serves the active tenant with the earliest virtual clock. A tenant
-- that becomes active (its queue was empty) starts a credit of jobs (at weight 1; default 64) before
-- the global clock: a studio's small batch that arrives while another's thousands are queued has
-- its first jobs dispatched next instead of waiting its 1/n share from the first job on, and a
-- busy tenant gives way for at most that many dispatches per such arrival. It is bounded, so
-- idle time still earns nothing more. bench/schedule (3,000 jobs of one tenant, then two of 50):
-- small tenants' p95 wait 2.85/2.73 x alone without it, 1.86/2.28 x at 32, 1.45/1.78 x at 64.
-- The credit is `tenants.activation_credit` (sync_config.lua: meta's `activation_credit`).
local ACTIVATION_CREDIT = 64
local function activation_vt(P)
  local m = redis.call('HMGET', P .. ':meta', 'vt', 'activation_credit')
  return (tonumber(m[1]) or 0) - (tonumber(m[2]) or ACTIVATION_CREDIT)
end

-- Scripts that free an account slot or add dispatchable work leave one token on `dwake`, which a
-- scheduler blocks on (scheduler/src/dispatch_wake.cpp) to run a dispatch round at once.
local function wake_dispatch(ctx) ctx.wake_dispatch = true end

-- `<P>:<kind>:<name>`, built once per call: a transition names up to six counter keys, and in a
-- call of many jobs they are mostly the same few.
local function ctx_key(ctx, kind, name)
  local keys = ctx.keys
  if not keys then keys = {}; ctx.keys = keys end
  local by_name = keys[kind]
  if not by_name then by_name = {}; keys[kind] = by_name end
  local key = by_name[name]
  if not key then key = ctx.P .. ':' .. kind .. ':' .. name; by_name[name] = key end
  return key
end

-- A job's comma-separated candidate models as a list, split once per call.
local function ctx_models(ctx, models)
  local splits = ctx.splits
  if not splits then splits = {}; ctx.splits = splits end
  local list = splits[models]
  if not list then
    list = {}
    for m in string.gmatch(models, '[^,]+') do list[#list + 1] = m end
    splits[models] = list
  end
  return list
end

local function count(ctx, key, field, delta)
  local c = ctx.counters[key]
  if not c then c = {}; ctx.counters[key] = c end
  c[field] = (c[field] or 0) + delta
end

-- Per-model queue depth for the live view (ListModels / GetStats), kept by transitions rather
-- than counted by scanning: `q_pending` counts PENDING jobs (waiting for dispatch or waiting out
-- a retry's backoff) once under every model they may go to, so the sum over models can exceed
-- the number of jobs; `q_dispatched` (dispatched, no worker yet) and `q_running` (leased by a
-- worker) count jobs under the model they were dispatched to.
local depth_field = {PENDING = 'q_pending', DISPATCHED = 'q_dispatched', RUNNING = 'q_running'}
local function depth_add(ctx, state, models, model, delta)
  local f = depth_field[state]
  if not f then return end
  if state == 'PENDING' then
    for _, m in ipairs(ctx_models(ctx, models or '')) do count(ctx, ctx_key(ctx, 'model', m), f, delta) end
  elseif model and model ~= '' then
    count(ctx, ctx_key(ctx, 'model', model), f, delta)
  end
end

-- Defined at the end of this file (groups: storyboards, compares).
local group_child_ended

-- Numbers as text, made once a call: Lua formats a number with sprintf each time it becomes
-- text (~3k instructions under callgrind), and the jobs of a call mostly share their seqs.
local NEXT_SEQ = {}  -- a job's seq (as read) -> {seq + 1, its text}
local function next_seq(seq)
  local next = NEXT_SEQ[seq or false]
  if not next then
    local n = (tonumber(seq) or 0) + 1
    next = {n, tostring(n)}
    NEXT_SEQ[seq or false] = next
  end
  return next[1], next[2]
end
local HIST_FIELD = {}  -- seq -> 'h:<seq>'
local function hist_field(seq)
  local name = HIST_FIELD[seq]
  if not name then
    name = 'h:' .. seq
    HIST_FIELD[seq] = name
  end
  return name
end

-- What a held job's phase changes keep in its held entry instead of its record (see HELD
-- below): the history entries `job.hist` (seqs seq - #hist + 1 .. seq) and HELD_ONLY. The
-- transition that takes the job from its worker (to `to_state`) writes them into the record
-- (`job.held_take`: its held entry was merged in by held_take, so they are written even without
-- history). A job that ends keeps only its upstream id: its slot is given back by the caller,
-- which writes `slot` itself, and a create intent means nothing once it ended (retry.lua
-- clears it).
local HELD_ONLY = {'upstream', 'slot', 'create_intent', 'create_log'}
local function held_unload(job, fields, seq, to_state)
  local hist = job.hist
  if hist then
    local first = seq - #hist
    for k, e in ipairs(hist) do
      fields[#fields + 1] = hist_field(first + k - 1)
      fields[#fields + 1] = e
    end
  end
  local ending = to_state == 'SUCCEEDED' or to_state == 'FAILED' or to_state == 'CANCELLED'
  for k = 1, ending and 1 or #HELD_ONLY do
    local n = HELD_ONLY[k]
    local v = job[n]
    if v == nil or v == false then v = '' end
    fields[#fields + 1] = n
    fields[#fields + 1] = v
  end
  job.hist, job.held_take = nil, nil
end

-- One transition of `job` (a read_job table) to `to_state`: one HSET of the job carrying the
-- new state, `extra` fields and the history entry `h:<seq>` ("state|phase|at|detail"); the
-- batch and depth counters and the event are gathered in ctx for flush. Updates `job` in place
-- so a second transition of it in the same call stays consistent.
-- `held_only` (phase.lua, a job in its worker's held table staying RUNNING): the record is not
-- written; the history entry and `extra` go into `job` (job.hist), which held_save writes to
-- the held entry, and the event and webhook are as for any transition.
local function transition(ctx, job, to_state, phase, detail, extra, held_only)
  local from_state = job.state or ''
  local seq, seq_s = next_seq(job.seq)
  local new_model = job.model
  local entry = to_state .. '|' .. phase .. '|' .. ctx.now_s .. '|' .. (detail or '')
  if held_only then
    local hist = job.hist or {}
    hist[#hist + 1] = entry
    job.hist, job.seq, job.held_dirty, job.h_tail = hist, seq_s, true, nil
    extra = extra or {}
    for i = 1, #extra - 1, 2 do
      local v = extra[i + 1]
      if v == '' then v = false end
      job[extra[i]] = v
    end
    webhook_note(ctx, job, to_state, phase, seq, detail, extra)
    ctx.events[#ctx.events + 1] = table.concat(
        {job.id, seq_s, to_state, phase, ctx.now_s, job.batch or '', job.tenant or '', detail or ''},
        '\31')
    return seq
  end
  local fields = {'state', to_state, 'phase', phase, 'updated', ctx.now_s, 'seq', seq_s,
                  hist_field(seq), entry}
  if job.hist or job.held_take then held_unload(job, fields, seq, to_state) end
  if job.money_dirty then
    fields[#fields + 1] = 'hold'; fields[#fields + 1] = string.format('%d', job.hold)
    fields[#fields + 1] = 'cost'; fields[#fields + 1] = string.format('%d', job.cost)
    job.money_dirty = false
  end
  if extra then
    for i = 1, #extra - 1, 2 do
      fields[#fields + 1] = extra[i]
      fields[#fields + 1] = extra[i + 1]
      if extra[i] == 'model' then new_model = extra[i + 1] end
    end
  end
  -- `job.defer` (dispatch.lua leasing straight to a waiting worker): two transitions of one
  -- call, one HSET of `job.defer` by the caller. The first (defer = true) leaves its fields
  -- there; the second's state, phase, updated and seq (fields 1-8, as built above) replace the
  -- first's, and the rest is appended.
  local defer = job.defer
  if defer == true then
    job.defer = fields
  elseif defer then
    local n = #defer
    for i = 2, 8, 2 do defer[i] = fields[i] end
    for i = 9, #fields do defer[n + i - 8] = fields[i] end
  else
    redis.call('HSET', jkey(ctx.P, job.id), unpack(fields))
  end
  if from_state ~= to_state or (new_model or '') ~= (job.model or '') then
    note_move(ctx, job, from_state, to_state, new_model)
  end
  -- `job.count_later` (dispatch.lua, a job it leases straight to a worker): this step is not
  -- counted; the next one counts from where the job was (`count_from`), so the call's counters
  -- move once for both.
  if job.count_later then
    job.count_later, job.count_from = nil, from_state
  elseif from_state ~= to_state then
    local from = job.count_from or from_state
    job.count_from = nil
    -- Per-tenant live counts (the tenant limits at submit read them).
    if job.tenant and job.tenant ~= '' then
      local t = ctx_key(ctx, 'tlive', job.tenant)
      if depth_field[from] then count(ctx, t, from, -1) end
      if depth_field[to_state] then count(ctx, t, to_state, 1) end
    end
    depth_add(ctx, from, job.models, job.model, -1)
    depth_add(ctx, to_state, job.models, new_model, 1)
    if job.batch and job.batch ~= '' then
      local b = ctx_key(ctx, 'batch', job.batch)
      if from ~= '' then count(ctx, b, from, -1) end
      count(ctx, b, to_state, 1)
    end
  end
  job.state, job.seq, job.model, job.unindexed = to_state, seq_s, new_model, nil
  webhook_note(ctx, job, to_state, phase, seq, detail, fields)
  -- One event record: id, seq, state, phase, at, batch, tenant, detail (unit separator
  -- between). The tenant comes with the job's one HMGET: the dashboard's per-tenant figures
  -- come from the stream.
  ctx.events[#ctx.events + 1] = job.id .. '\31' .. seq_s .. '\31' .. to_state .. '\31' .. phase ..
                                 '\31' .. ctx.now_s .. '\31' .. (job.batch or '') .. '\31' ..
                                 (job.tenant or '') .. '\31' .. (detail or '')
  if job.parent and job.parent ~= '' and from_state ~= to_state and
      (to_state == 'SUCCEEDED' or to_state == 'FAILED' or to_state == 'CANCELLED') then
    group_child_ended(ctx, job, to_state, extra)
  end
  return seq
end

-- Writes what the call gathered: each counter once, and every transition of the call as one
-- stream entry (WatchJob and the batch watchers read them from there; GetJob from the hash).
local flush_wallets
local function flush(ctx)
  flush_wallets(ctx)
  for key, fields in pairs(ctx.counters) do
    for field, delta in pairs(fields) do
      if delta ~= 0 then
        local v = redis.call('HINCRBY', key, field, delta)
        -- An account's slot count never goes below zero (a slot given back twice).
        if v < 0 and field == 'in_flight' then redis.call('HSET', key, field, 0) end
      end
    end
  end
  ctx.counters = {}
  if #ctx.events > 0 then
    local args = {ctx.P .. ':events', 'MAXLEN', '~', 100000, '*'}
    for i, e in ipairs(ctx.events) do
      args[#args + 1] = 'e'
      args[#args + 1] = e
    end
    redis.call('XADD', unpack(args))
    ctx.events = {}
  end
  flush_indexes(ctx)
  if ctx.wake_dispatch then
    ctx.wake_dispatch = false
    if redis.call('LLEN', ctx.P .. ':dwake') == 0 then redis.call('LPUSH', ctx.P .. ':dwake', '1') end
  end
end

-- Gives back the account slot a dispatched job holds (gathered in ctx: one HINCRBY per account
-- per call). `slot` is the job's `slot` field: the account whose slot it holds, '' once given
-- back (when its upstream task ended, see phase.lua).
local function release_slot(ctx, slot)
  if slot and slot ~= '' then
    count(ctx, ctx_key(ctx, 'acct', slot), 'in_flight', -1)  -- the key built once a call
    wake_dispatch(ctx)
  end
end

-- A tenant's limits (auth:tenant: max_queued, max_in_flight; 0: none) and what it has against
-- them now: queued = PENDING + DISPATCHED, in flight = those + RUNNING (tlive, counted by
-- transition). Submit and RetryJob check the same numbers.
local function tenant_limits(P, tenant)
  local h = redis.call('HMGET', P .. ':auth:tenant:' .. tenant, 'max_queued', 'max_in_flight')
  local c = redis.call('HMGET', P .. ':tlive:' .. tenant, 'PENDING', 'DISPATCHED', 'RUNNING')
  local pend = math.max(0, tonumber(c[1] or '0') or 0)
  local disp = math.max(0, tonumber(c[2] or '0') or 0)
  local run = math.max(0, tonumber(c[3] or '0') or 0)
  return {max_queued = tonumber(h[1] or '0') or 0, max_in_flight = tonumber(h[2] or '0') or 0,
          queued = pend + disp, in_flight = pend + disp + run}
end

-- Gives back the account slot a job holds, or, while its upstream task may still be generating
-- (`task_may_run`, and a create was sent: an id or an intent recorded), holds it until the task
-- would have ended by its model's latency profile, when the reaper gives it back (reap.lua,
-- `slothold`). A cancelled or given-up task still takes one of the account's concurrent tasks at
-- the provider (Kling, Sora and Veo cannot cancel one): giving the slot back at once sent the
-- next job into the provider's concurrency limit (a 429, and the account's rate halved for it).
-- One member per hold (the job's seq makes it unique): a job cancelled, retried and cancelled
-- again within the hold holds two slots, and each is given back.
local function give_back_slot(ctx, job, task_may_run)
  if not job.slot or job.slot == '' then return end
  if not (task_may_run and ((job.upstream or '') ~= '' or (job.create_intent or '') ~= '')) then
    release_slot(ctx, job.slot)
    return
  end
  local lat = redis.call('HMGET', ctx.P .. ':model:' .. (job.model or ''), 'lat_max', 'lat')
  local hold_s = tonumber(lat[1]) or 0
  if hold_s <= 0 then hold_s = 2 * (tonumber(lat[2]) or 300) end
  hold_s = math.max(1, math.min(1800, hold_s))
  redis.call('ZADD', ctx.P .. ':slothold', ctx.now + math.floor(hold_s * 1000),
             job.slot .. '|' .. job.id .. '|' .. (job.seq or ''))
end

local function is_terminal(state)
  return state == 'SUCCEEDED' or state == 'FAILED' or state == 'CANCELLED'
end

-- The create rate an account runs at: its configured rpm, or after a 429 the learned lower rate,
-- which climbs back linearly (a tenth of the configured rate per minute) until it reaches the
-- configured one again. Derived from (learned_rpm, learned_at), so dispatch never writes it.
local function effective_rpm(rpm, learned, learned_at, now)
  if not learned or learned <= 0 or learned >= rpm then return rpm end
  local grown = learned + math.max(0, now - (learned_at or now)) * rpm / 600000
  if grown >= rpm then return rpm end
  return grown
end

-- The number of tasks an account may run at once: its configured max_concurrent, or after the
-- provider refused a create for concurrency (fail.lua) the learned lower number, which grows back
-- by one a minute until it is the configured one again. A provider's concurrency is bought in
-- packs that may change, or shared with other users of the same account, so a learned limit is
-- probed again: a probe past the real limit costs one refused create, which is not billed.
local CONC_REGROW_MS = 60000
local function effective_conc(conc, learned, learned_at, now)
  if not learned or learned <= 0 or learned >= conc then return conc end
  local grown = learned + math.floor(math.max(0, now - (learned_at or now)) / CONC_REGROW_MS)
  if grown >= conc then return conc end
  return grown
end

-- A create let go by create_permit.lua got its answer (an upstream id, or an error): its entry in
-- the account's create log moves to `now`. `member` is the job's `create_log` field.
local function settle_create(P, account, member, now)
  if member and member ~= '' and account and account ~= '' then
    redis.call('ZADD', P .. ':acct:' .. account .. ':creates', 'XX', now, member)
  end
end

-- Named fields in, named fields out: a flat {name, value, ...} list from a table, skipping nils.
local function flat(t, names)
  local out = {}
  for _, n in ipairs(names) do
    local v = t[n]
    if v ~= nil and v ~= false then
      out[#out + 1] = n
      out[#out + 1] = tostring(v)
    end
  end
  return out
end
