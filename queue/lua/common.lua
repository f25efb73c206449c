-- Shared helpers, prepended to every script at build time (scripts stay one EVALSHA each).
-- All keys of a deployment share one hash tag: P = "<prefix>:{q}".
local function jkey(P, id) return P .. ':job:' .. id end

-- Appends one transition to the job's history and to the event stream; bumps the batch
-- counters from `from_state` to `to_state`. `seq` orders transitions of one job. `batch`: the
-- job's batch field when the caller already read it (saves one HGET per transition, which is
-- one Redis command per job per transition); nil reads it here.
local function transition(P, id, now, from_state, to_state, phase, detail, extra, batch)
  local j = jkey(P, id)
  local seq = redis.call('HINCRBY', j, 'seq', 1)
  local fields = {'state', to_state, 'phase', phase, 'updated', now}
  if extra then for i = 1, #extra do fields[#fields + 1] = extra[i] end end
  redis.call('HSET', j, unpack(fields))
  redis.call('APPEND', j .. ':hist',
             seq .. '|' .. to_state .. '|' .. phase .. '|' .. now .. '|' .. (detail or '') .. '\n')
  if batch == nil then batch = redis.call('HGET', j, 'batch') end
  if batch and batch ~= '' and from_state ~= to_state then
    local b = P .. ':batch:' .. batch
    if from_state ~= '' then redis.call('HINCRBY', b, from_state, -1) end
    redis.call('HINCRBY', b, to_state, 1)
  end
  redis.call('XADD', P .. ':events', 'MAXLEN', '~', 200000, '*', 'j', id, 'q', seq, 's', to_state,
             'p', phase, 't', now, 'b', batch or '', 'd', detail or '')
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
