-- Shared helpers, prepended to every script at build time (scripts stay one EVALSHA each).
-- All keys of a deployment share one hash tag: P = "<prefix>:{q}".
local function jkey(P, id) return P .. ':job:' .. id end

-- Per-model queue depth for the live view (ListModels / GetStats), kept by transition() rather
-- than counted by scanning: `q_pending` counts PENDING jobs (waiting for dispatch or waiting out
-- a retry's backoff) once under every model they may go to, so the sum over models can exceed
-- the number of jobs; `q_dispatched` (dispatched, no worker yet) and `q_running` (leased by a
-- worker) count jobs under the model they were dispatched to. Jobs already in flight when the
-- counters were introduced are not in them (readers clamp at zero).
local depth_field = {PENDING = 'q_pending', DISPATCHED = 'q_dispatched', RUNNING = 'q_running'}
local function depth_add(P, state, models, model, delta)
  local f = depth_field[state]
  if not f then return end
  if state == 'PENDING' then
    for m in string.gmatch(models or '', '[^,]+') do
      redis.call('HINCRBY', P .. ':model:' .. m, f, delta)
    end
  elseif model and model ~= '' then
    redis.call('HINCRBY', P .. ':model:' .. model, f, delta)
  end
end

-- Appends one transition to the job's history and to the event stream; bumps the batch
-- counters from `from_state` to `to_state`. `seq` orders transitions of one job. `batch`: the
-- job's batch field when the caller already read it (saves one HGET per transition, which is
-- one Redis command per job per transition); nil reads it here.
local function transition(P, id, now, from_state, to_state, phase, detail, extra, batch)
  local j = jkey(P, id)
  -- The model fields as they were before this transition, for the per-model depth counters.
  local counted = from_state ~= to_state and (depth_field[from_state] or depth_field[to_state])
  local models, old_model, new_model, tenant
  if counted then
    local r = redis.call('HMGET', j, 'models', 'model', 'batch', 'tenant')
    models, old_model, tenant = r[1], r[2], r[4]
    new_model = old_model
    if extra then
      for i = 1, #extra - 1, 2 do if extra[i] == 'model' then new_model = extra[i + 1] end end
    end
    if batch == nil then batch = r[3] end
  end
  local seq = redis.call('HINCRBY', j, 'seq', 1)
  local fields = {'state', to_state, 'phase', phase, 'updated', now}
  if extra then for i = 1, #extra do fields[#fields + 1] = extra[i] end end
  redis.call('HSET', j, unpack(fields))
  if counted then
    depth_add(P, from_state, models, old_model, -1)
    depth_add(P, to_state, models, new_model, 1)
  end
  redis.call('APPEND', j .. ':hist',
             seq .. '|' .. to_state .. '|' .. phase .. '|' .. now .. '|' .. (detail or '') .. '\n')
  if batch == nil then batch = redis.call('HGET', j, 'batch') end
  if batch and batch ~= '' and from_state ~= to_state then
    local b = P .. ':batch:' .. batch
    if from_state ~= '' then redis.call('HINCRBY', b, from_state, -1) end
    redis.call('HINCRBY', b, to_state, 1)
  end
  -- The tenant rides along where the HMGET above already read it (no extra command): the
  -- dashboard's per-tenant figures come from the stream.
  redis.call('XADD', P .. ':events', 'MAXLEN', '~', 200000, '*', 'j', id, 'q', seq, 's', to_state,
             'p', phase, 't', now, 'b', batch or '', 'd', detail or '', 'n', tenant or '')
  return seq
end

-- Gives back the account slot a dispatched job holds. `slot` is the job's `slot` field: the
-- account whose slot it holds, '' once given back (when its upstream task ended, see phase.lua),
-- or missing on a record written before that field existed, where `account` says it.
local function release_slot(P, slot, account)
  if slot == nil or slot == false then slot = account end
  if slot and slot ~= '' then
    local a = P .. ':acct:' .. slot
    if tonumber(redis.call('HINCRBY', a, 'in_flight', -1)) < 0 then
      redis.call('HSET', a, 'in_flight', 0)
    end
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
