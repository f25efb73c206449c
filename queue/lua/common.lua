-- Shared helpers, prepended to every script at build time (scripts stay one EVALSHA each).
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
  return job
end

-- The whole record of `id` as a job table, or nil when the job does not exist; a missing field
-- is nil (read_job gives false). Dispatch and lease need most of a record: HGETALL walks the
-- hash once, where an HMGET of the ~27 fields they use looks each name up and hands Lua a value
-- for every absent one (callgrind: 72,000 instructions for that HMGET against 42,000).
local function read_record(P, id)
  local r = redis.call('HGETALL', jkey(P, id))
  if #r == 0 then return nil end
  local job = {id = id}
  for i = 1, #r, 2 do job[r[i]] = r[i + 1] end
  -- webhook_note tells a read job (false: none) from submit.lua's new one (nil).
  if job.webhook == nil then job.webhook = false end
  return job
end

-- `now_s`: `now` as text, made once. Lua turns a number into text with sprintf (%.14g) each time
-- it is concatenated or passed to redis.call: ~0.3 us for a time in milliseconds, ~0.2 for a seq,
-- several times per transition (issue 11, measured in Redis's Lua).
local function new_ctx(P, now)
  return {P = P, now = now, now_s = tostring(now), counters = {}, events = {}, wallets = {},
          prices = {}, keys = {}, splits = {}}
end

-- Listing and retention indexes (queue/README.md): `state:<STATE>` holds every job in that
-- state, `model:<m>:jobs` every job dispatched to m (until it goes back to PENDING), each scored
-- by when the job entered; `tenant:<t>:jobs` every job of t by submit time. transition() notes a
-- job's first and last state and model of the call, flush_indexes moves it once.
local function note_move(ctx, job, from_state, to_state, to_model)
  if not ctx.moves then ctx.moves, ctx.move_ids = {}, {} end
  local m = ctx.moves[job.id]
  if not m then
    m = {state = from_state, model = job.model or '', tenant = job.tenant or ''}
    ctx.moves[job.id] = m
    ctx.move_ids[#ctx.move_ids + 1] = job.id
  end
  m.to_state, m.to_model = to_state, to_model or ''
end

local function flush_indexes(ctx)
  if not ctx.moves then return end
  local P, now = ctx.P, ctx.now
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
      else
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
-- that becomes active (its queue was empty) starts ACTIVATION_CREDIT jobs (at weight 1) before
-- the global clock: a studio's small batch that arrives while another's thousands are queued has
-- its first jobs dispatched next instead of waiting its 1/n share from the first job on, and a
-- busy tenant gives way for at most that many dispatches per such arrival. It is bounded, so
-- idle time still earns nothing more. bench/schedule (3,000 jobs of one tenant, then two of 50):
-- small tenants' p95 wait 2.85/2.73 x alone without it, 1.86/2.28 x at 32, 1.45/1.78 x at 64.
local ACTIVATION_CREDIT = 64
local function activation_vt(P)
  return (tonumber(redis.call('HGET', P .. ':meta', 'vt')) or 0) - ACTIVATION_CREDIT
end

-- Scripts that free an account slot or add dispatchable work leave one token on `dwake`, which a
-- scheduler blocks on (scheduler/src/dispatch_wake.cpp) to run a dispatch round at once.
local function wake_dispatch(ctx) ctx.wake_dispatch = true end

-- `<P>:<kind>:<name>`, built once per call: a transition names up to six counter keys, and in a
-- call of many jobs they are mostly the same few.
local function ctx_key(ctx, kind, name)
  local by_name = ctx.keys[kind]
  if not by_name then by_name = {}; ctx.keys[kind] = by_name end
  local key = by_name[name]
  if not key then key = ctx.P .. ':' .. kind .. ':' .. name; by_name[name] = key end
  return key
end

-- A job's comma-separated candidate models as a list, split once per call.
local function ctx_models(ctx, models)
  local list = ctx.splits[models]
  if not list then
    list = {}
    for m in string.gmatch(models, '[^,]+') do list[#list + 1] = m end
    ctx.splits[models] = list
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
      fields[#fields + 1] = 'h:' .. (first + k - 1)
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
  local seq = (tonumber(job.seq) or 0) + 1
  local seq_s = tostring(seq)
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
                  'h:' .. seq_s, entry}
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
  redis.call('HSET', jkey(ctx.P, job.id), unpack(fields))
  if from_state ~= to_state or (new_model or '') ~= (job.model or '') then
    note_move(ctx, job, from_state, to_state, new_model)
  end
  if from_state ~= to_state then
    -- Per-tenant live counts (the tenant limits at submit read them).
    if job.tenant and job.tenant ~= '' then
      local t = ctx_key(ctx, 'tlive', job.tenant)
      if depth_field[from_state] then count(ctx, t, from_state, -1) end
      if depth_field[to_state] then count(ctx, t, to_state, 1) end
    end
    depth_add(ctx, from_state, job.models, job.model, -1)
    depth_add(ctx, to_state, job.models, new_model, 1)
    if job.batch and job.batch ~= '' then
      local b = ctx_key(ctx, 'batch', job.batch)
      if from_state ~= '' then count(ctx, b, from_state, -1) end
      count(ctx, b, to_state, 1)
    end
  end
  job.state, job.seq, job.model = to_state, seq_s, new_model
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
    count(ctx, ctx.P .. ':acct:' .. slot, 'in_flight', -1)
    wake_dispatch(ctx)
  end
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

-- Groups (issue 13): a storyboard or compare is a parent job (`kind`, `children` = ids in order,
-- `nchildren`) whose children are ordinary jobs carrying `parent` and `index`. The parent waits
-- PENDING outside every queue while its children run. Each child's end lands here, in the
-- script that ends it: a success is counted (`children_ok`, kept even when the group already
-- ended, so a retry knows what is left); the last success queues the parent's own step (the
-- join, the contact sheet) on `ready` for a worker to lease; a child that FAILED (retries spent)
-- or was CANCELLED fails the group, naming it.
local function group_queue_step(ctx, g, detail)
  transition(ctx, g, 'DISPATCHED', '', detail, {'dispatched', ctx.now})
  redis.call('RPUSH', ctx.P .. ':ready', g.id)
  redis.call('LPUSH', ctx.P .. ':wake', '1')
  redis.call('LTRIM', ctx.P .. ':wake', 0, 63)
end

local GROUP_STEP = {storyboard = 'join', compare = 'contact sheet'}
local GROUP_CHILD = {storyboard = 'shots', compare = 'takes'}

-- Chained storyboards: defined at the end of this file (they move money).
local chain_queue_next, chain_stop_after

group_child_ended = function(ctx, child, state, extra)
  local gkey = jkey(ctx.P, child.parent)
  local ok = 0
  if state == 'SUCCEEDED' then ok = redis.call('HINCRBY', gkey, 'children_ok', 1) end
  local g = read_job(ctx.P, child.parent, {'kind', 'nchildren', 'chain', 'children'})
  if not g or g.state ~= 'PENDING' then return end
  local kind = g.kind or ''
  if state == 'SUCCEEDED' then
    if ok >= (tonumber(g.nchildren) or 0) then
      group_queue_step(ctx, g, 'all ' .. ok .. ' ' .. (GROUP_CHILD[kind] or 'children') ..
                               ' succeeded; ' .. (GROUP_STEP[kind] or 'step') .. ' queued')
    elseif g.chain == '1' then
      local index = tonumber(redis.call('HGET', jkey(ctx.P, child.id), 'index') or '')
      if index then chain_queue_next(ctx, g, index, extra) end
    end
    return
  end
  local index = redis.call('HGET', jkey(ctx.P, child.id), 'index') or '?'
  local category, message = 'internal', 'cancelled'
  if extra then
    for i = 1, #extra - 1, 2 do
      if extra[i] == 'err_cat' and extra[i + 1] ~= '' then category = extra[i + 1] end
      if extra[i] == 'err_msg' and extra[i + 1] ~= '' then message = extra[i + 1] end
    end
  end
  local what = (GROUP_CHILD[kind] or 'children') .. '[' .. index .. '] (job ' .. child.id .. ')'
  local text = what .. ' ' .. string.lower(state) .. ': ' .. message
  transition(ctx, g, 'FAILED', '', text,
             {'err_cat', category, 'err_msg', text, 'err_code', '', 'finished', ctx.now})
  if g.chain == '1' and tonumber(index) then chain_stop_after(ctx, g, tonumber(index)) end
end

-- The wallet (issue 12). Money is integer micro-dollars, moved only here and only in the same
-- script call as the job's state change, so money and state never disagree.
-- Keys: wallet:<tenant> (hash: balance = available, reserved, spent, topups, sd:<utc day>,
-- sm:<YYYY-MM>): always balance + reserved + spent = topups. ledger:<tenant> (a stream, never
-- trimmed): one entry per movement, `amount` being the change of `balance`, so the amounts sum
-- to the balance. A tenant without a wallet hash (never topped up) is not billed; a job is
-- billed (`bill` = 1) when its tenant had a wallet at submit and the caller was not the open
-- principal.
-- Per job: `secs` (seconds billed), `res` (resolution), `hold` (reserved now), `cost` (settled
-- so far). The batch hash keeps `cost` (hold + settled of its jobs, what a budget limits) and
-- `spent:<model>` (settled per model), for every job, billed or not.
local function money_str(v) return string.format('%d', v) end

-- Price in micro-dollars per second of `model` at `res` (the catalogue's per-resolution price,
-- else its price), read once per call.
local function model_price(ctx, model, res)
  local key = model .. '|' .. (res or '')
  local v = ctx.prices[key]
  if v == nil then
    local h = redis.call('HMGET', ctx.P .. ':model:' .. model, 'price:' .. (res or ''), 'price')
    v = tonumber(h[1] or '') or tonumber(h[2] or '') or 0
    ctx.prices[key] = v
  end
  return v
end

local function job_price(ctx, job, model)
  return model_price(ctx, model, job.res) * (tonumber(job.secs) or 0)
end

-- The most a job can cost over its candidate models.
local function max_price(ctx, job)
  local most = 0
  for m in string.gmatch(job.models or '', '[^,]+') do
    most = math.max(most, job_price(ctx, job, m))
  end
  return most
end

-- The tenant's wallet (read once per call), or false when it has none.
local function wallet_of(ctx, tenant)
  local w = ctx.wallets[tenant]
  if w == nil then
    local h = redis.call('HMGET', ctx.P .. ':wallet:' .. tenant, 'balance', 'reserved', 'spent')
    if not h[1] then
      w = false
    else
      w = {balance = tonumber(h[1]) or 0, reserved = tonumber(h[2]) or 0,
           spent = tonumber(h[3]) or 0, d_balance = 0, d_reserved = 0, d_spent = 0, ledger = {}}
    end
    ctx.wallets[tenant] = w
  end
  return w
end

-- What a billed job may still reserve: its hold plus the wallet's balance (huge when unbilled).
local function affordable(ctx, job)
  if job.bill ~= '1' then return math.huge end
  local w = wallet_of(ctx, job.tenant)
  if not w then return math.huge end
  return (tonumber(job.hold) or 0) + w.balance
end

local function utc_month(day)
  -- Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
  local z = day + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) -
                          math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d', y, m)
end

-- Moves a job's money: its hold is released, `charge` of it is spent (settled), and `new_hold`
-- is reserved; the difference comes from or goes back to the balance. `kind` names the ledger
-- entry (reserve, reprice, settle, refund). The job's `hold`/`cost` are written by its next
-- transition (call this before it).
local function move_money(ctx, job, kind, new_hold, charge)
  local hold = tonumber(job.hold) or 0
  charge = charge or 0
  if hold == new_hold and charge == 0 then return end
  job.hold = new_hold
  job.cost = (tonumber(job.cost) or 0) + charge
  job.money_dirty = true
  local money_batch = job.mbatch or job.batch  -- a group's child: its parent's batch
  if money_batch and money_batch ~= '' then
    local b = ctx.P .. ':batch:' .. money_batch
    count(ctx, b, 'cost', new_hold + charge - hold)
    if charge ~= 0 and job.model and job.model ~= '' then
      count(ctx, b, 'spent:' .. job.model, charge)
    end
  end
  if job.bill ~= '1' then return end
  local w = wallet_of(ctx, job.tenant)
  if not w then return end
  local delta = hold - charge - new_hold
  w.balance = w.balance + delta
  w.reserved = w.reserved - hold + new_hold
  w.spent = w.spent + charge
  w.d_balance = w.d_balance + delta
  w.d_reserved = w.d_reserved - hold + new_hold
  w.d_spent = w.d_spent + charge
  w.ledger[#w.ledger + 1] = {'kind', kind, 'job', job.id, 'amount', money_str(delta), 'charge',
                             money_str(charge), 'hold', money_str(new_hold), 'balance',
                             money_str(w.balance), 'reserved', money_str(w.reserved), 'model',
                             job.model or '', 'at', ctx.now}
end

flush_wallets = function(ctx)
  local day = math.floor(ctx.now / 86400000)
  for tenant, w in pairs(ctx.wallets) do
    if w and #w.ledger > 0 then
      local key = ctx.P .. ':wallet:' .. tenant
      redis.call('HINCRBY', key, 'balance', money_str(w.d_balance))
      redis.call('HINCRBY', key, 'reserved', money_str(w.d_reserved))
      if w.d_spent ~= 0 then
        redis.call('HINCRBY', key, 'spent', money_str(w.d_spent))
        redis.call('HINCRBY', key, 'sd:' .. day, money_str(w.d_spent))
        redis.call('HINCRBY', key, 'sm:' .. utc_month(day), money_str(w.d_spent))
      end
      for _, entry in ipairs(w.ledger) do
        redis.call('XADD', ctx.P .. ':ledger:' .. tenant, '*', unpack(entry))
      end
      w.d_balance, w.d_reserved, w.d_spent, w.ledger = 0, 0, 0, {}
    end
  end
end

-- Chained storyboards (`chain` = 1 on the group): the shots run in order. Shot k+1 waits
-- PENDING outside the queues until shot k succeeds; then it gets shot k's last frame (the
-- `last_frame` its worker stored, passed to complete.lua) as its first frame (`chain_frame`,
-- which the worker sends as first_frame) and is queued. A shot that fails stops the chain: the
-- shots after it, which never ran, are cancelled and their reservations refunded; RetryJob
-- resumes from the failed shot (retry.lua).
local function chain_ids(g)
  local ids = {}
  for id in string.gmatch(g.children or '', '[^,]+') do ids[#ids + 1] = id end
  return ids
end

chain_queue_next = function(ctx, g, index, extra)
  local next_id = chain_ids(g)[index + 2]
  if not next_id then return end
  local nxt = read_job(ctx.P, next_id, {'score'})
  if not nxt or nxt.state ~= 'PENDING' then return end
  local frame = nil
  for i = 1, #(extra or {}) - 1, 2 do
    if extra[i] == 'last_frame' and extra[i + 1] ~= '' then frame = extra[i + 1] end
  end
  local detail = 'queued: starts from the last frame of shots[' .. index .. ']'
  local fields = nil
  if frame then
    fields = {'chain_frame', frame}
  else
    detail = 'queued: shots[' .. index .. '] handed on no last frame'
  end
  transition(ctx, nxt, 'PENDING', '', detail, fields)
  local vt = activation_vt(ctx.P)
  redis.call('ZADD', ctx.P .. ':pending:' .. nxt.tenant, nxt.score, nxt.id)
  redis.call('ZADD', ctx.P .. ':active', 'NX', vt, nxt.tenant)
  wake_dispatch(ctx)
end

chain_stop_after = function(ctx, g, index)
  local ids = chain_ids(g)
  for k = index + 2, #ids do
    local c = read_job(ctx.P, ids[k])
    if c and c.state == 'PENDING' then
      redis.call('ZREM', ctx.P .. ':pending:' .. c.tenant, c.id)
      move_money(ctx, c, 'refund', 0, 0)
      transition(ctx, c, 'CANCELLED', '', 'not run: the chain stopped at shots[' .. index .. ']',
                 {'finished', ctx.now})
    end
  end
end

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

