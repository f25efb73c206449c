-- Shared helpers, prepended to every script at build time (scripts stay one EVALSHA each).
-- All keys of a deployment share one hash tag: P = "<prefix>:{q}".
-- Cost rules (issue 11): a script reads each job it touches with one HMGET (the fields it needs,
-- named in JOB_READ) and writes it with one HSET; everything shared (batch counters, per-model
-- depth, the event stream) is gathered in a `ctx` and written once per call by `flush`.
local function jkey(P, id) return P .. ':job:' .. id end

-- The fields a transition needs besides what the caller checks: `seq` numbers the job's
-- transitions, `models`/`model` feed the depth counters, `batch` the batch counters, `tenant`
-- the event, `webhook` webhook_note (common_webhook.lua).
local JOB_READ = {'state', 'seq', 'models', 'model', 'batch', 'tenant', 'webhook'}

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

local function new_ctx(P, now)
  return {P = P, now = now, counters = {}, events = {}}
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
    for m in string.gmatch(models or '', '[^,]+') do count(ctx, ctx.P .. ':model:' .. m, f, delta) end
  elseif model and model ~= '' then
    count(ctx, ctx.P .. ':model:' .. model, f, delta)
  end
end

-- One transition of `job` (a read_job table) to `to_state`: one HSET of the job carrying the
-- new state, `extra` fields and the history entry `h:<seq>` ("state|phase|at|detail"); the
-- batch and depth counters and the event are gathered in ctx for flush. Updates `job` in place
-- so a second transition of it in the same call stays consistent.
local function transition(ctx, job, to_state, phase, detail, extra)
  local from_state = job.state or ''
  local seq = (tonumber(job.seq) or 0) + 1
  local new_model = job.model
  local fields = {'state', to_state, 'phase', phase, 'updated', ctx.now, 'seq', seq,
                  'h:' .. seq, to_state .. '|' .. phase .. '|' .. ctx.now .. '|' .. (detail or '')}
  if extra then
    for i = 1, #extra - 1, 2 do
      fields[#fields + 1] = extra[i]
      fields[#fields + 1] = extra[i + 1]
      if extra[i] == 'model' then new_model = extra[i + 1] end
    end
  end
  redis.call('HSET', jkey(ctx.P, job.id), unpack(fields))
  if from_state ~= to_state then
    depth_add(ctx, from_state, job.models, job.model, -1)
    depth_add(ctx, to_state, job.models, new_model, 1)
    if job.batch and job.batch ~= '' then
      local b = ctx.P .. ':batch:' .. job.batch
      if from_state ~= '' then count(ctx, b, from_state, -1) end
      count(ctx, b, to_state, 1)
    end
  end
  job.state, job.seq, job.model = to_state, seq, new_model
  webhook_note(ctx, job, to_state, phase, seq, detail, fields)
  -- One event record: id, seq, state, phase, at, batch, tenant, detail (unit separator
  -- between). The tenant comes with the job's one HMGET: the dashboard's per-tenant figures
  -- come from the stream.
  ctx.events[#ctx.events + 1] = table.concat(
      {job.id, seq, to_state, phase, ctx.now, job.batch or '', job.tenant or '', detail or ''},
      '\31')
  return seq
end

-- Writes what the call gathered: each counter once, and every transition of the call as one
-- stream entry (WatchJob and the batch watchers read them from there; GetJob from the hash).
local function flush(ctx)
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
end

-- Gives back the account slot a dispatched job holds (gathered in ctx: one HINCRBY per account
-- per call). `slot` is the job's `slot` field: the account whose slot it holds, '' once given
-- back (when its upstream task ended, see phase.lua).
local function release_slot(ctx, slot)
  if slot and slot ~= '' then count(ctx, ctx.P .. ':acct:' .. slot, 'in_flight', -1) end
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
