-- Admits many jobs as PENDING in one call (a chunk of a SubmitBatch stream, or one SubmitJob),
-- or answers with the job that already holds an item's idempotency key, or refuses an item that
-- its tenant's limits, its batch's budget or its tenant's wallet cannot take (issue 12).
-- ARGV: P now idem_ttl_s n, then per job: k followed by k names and values (the job record's
-- fields as job_codec.cpp names them: id tenant batch idem score models max_attempts spec
-- start_deadline finish_deadline priority pref bill secs res, and `budget`: the batch's budget
-- in micro-dollars, 0 for none, not stored on the job; a group's parent adds kind children
-- nchildren [chain], each of its children parent index).
-- A group's parent waits outside the pending queues (common.lua, group_child_ended) and holds
-- no money: its children are ordinary billed jobs. Its children come after it in the same call;
-- the group is taken or refused whole (limits, budget and wallet checked for all its children
-- at the parent), and none of the children is stored when the parent was a duplicate.
-- A chain's shots after the first wait PENDING outside the queues too, each until the shot
-- before it succeeds (common.lua, chain_next); they are reserved for here like every child.
-- Returns per job {id, duplicate(0|1)} or {'', refusal}, in order; a refusal is
-- 'LIMIT <name> <limit>', 'BUDGET <budget> <committed> <needed>' or
-- 'WALLET <available> <needed>'. Per job: one HSET (and one SET when it carries an idempotency
-- key); the indexes, counters and the event are written once per call.
local P, now, idem_ttl, n = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local ctx = new_ctx(P, now)
local out = {}
local pending = {}    -- tenant -> {score, id, ...}
local by_batch = {}   -- batch -> {now, id, ...}
local all = {}
local duplicate_parent = {}  -- parent id -> the existing job that holds its idempotency key
local refused_parent = {}    -- parent id -> the refusal of its whole group
local limits = {}     -- tenant -> {max_queued, max_in_flight, queued, in_flight}
local budgets = {}    -- batch -> {budget, committed}
local function limits_of(tenant)
  local l = limits[tenant]
  if not l then
    local h = redis.call('HMGET', P .. ':auth:tenant:' .. tenant, 'max_queued', 'max_in_flight')
    local c = redis.call('HMGET', P .. ':tlive:' .. tenant, 'PENDING', 'DISPATCHED', 'RUNNING')
    local pend = math.max(0, tonumber(c[1] or '0') or 0)
    local disp = math.max(0, tonumber(c[2] or '0') or 0)
    local run = math.max(0, tonumber(c[3] or '0') or 0)
    l = {max_queued = tonumber(h[1] or '0') or 0, max_in_flight = tonumber(h[2] or '0') or 0,
         queued = pend + disp, in_flight = pend + disp + run}
    limits[tenant] = l
  end
  return l
end
local function budget_of(batch, stated)
  local b = budgets[batch]
  if not b then
    local key = P .. ':batch:' .. batch
    if stated > 0 then redis.call('HSET', key, 'budget', money_str(stated)) end
    local h = redis.call('HMGET', key, 'budget', 'cost')
    b = {budget = tonumber(h[1] or '0') or 0, committed = tonumber(h[2] or '0') or 0}
    budgets[batch] = b
  end
  return b
end
-- Every item first, so a group's parent can be checked for all of its children.
local items = {}
local i = 5
for _ = 1, n do
  local k = tonumber(ARGV[i]); i = i + 1
  local f = {}
  local fields = {}
  for x = i, i + 2 * k - 1, 2 do
    f[ARGV[x]] = ARGV[x + 1]
    if ARGV[x] ~= 'budget' and ARGV[x] ~= 'id' then  -- the key names the job
      fields[#fields + 1] = ARGV[x]
      fields[#fields + 1] = ARGV[x + 1]
    end
  end
  i = i + 2 * k
  items[#items + 1] = {f = f, fields = fields}
end
-- A group's children belong to no batch, but their money counts against their parent's
-- (`mbatch`, common.lua's move_money).
local parent_batch = {}
local chain_parent = {}
for _, it in ipairs(items) do
  if it.f.kind and it.f.kind ~= '' then
    parent_batch[it.f.id] = it.f.batch or ''
    if it.f.chain == '1' then chain_parent[it.f.id] = true end
  end
end
for _, it in ipairs(items) do
  local mb = it.f.parent and parent_batch[it.f.parent]
  if mb and mb ~= '' then
    it.f.mbatch = mb
    it.fields[#it.fields + 1] = 'mbatch'; it.fields[#it.fields + 1] = mb
  end
end
local function job_of(f)
  return {id = f.id, state = '', seq = 0, models = f.models, batch = f.batch, tenant = f.tenant,
          secs = f.secs, res = f.res, hold = 0, cost = 0, bill = '0',
          parent = f.parent or '', mbatch = f.mbatch}
end
-- What a group's children need together: how many jobs and the most they can cost.
local group_size, group_need = {}, {}
for _, it in ipairs(items) do
  local parent = it.f.parent
  if parent and parent ~= '' then
    group_size[parent] = (group_size[parent] or 0) + 1
    group_need[parent] = (group_need[parent] or 0) + max_price(ctx, job_of(it.f))
  end
end

for _, it in ipairs(items) do
  local f, fields = it.f, it.fields
  local is_parent = f.kind and f.kind ~= ''
  local idem_key = nil
  local existing = false
  local refusal = nil
  if f.parent and f.parent ~= '' and duplicate_parent[f.parent] then
    existing = duplicate_parent[f.parent]
  elseif f.parent and f.parent ~= '' and refused_parent[f.parent] then
    refusal = refused_parent[f.parent]
  elseif f.idem and f.idem ~= '' then
    idem_key = P .. ':idem:' .. f.tenant .. ':' .. f.idem
    existing = redis.call('GET', idem_key)
  end
  local job = job_of(f)
  local need = 0
  local l, b, w = nil, nil, false
  if not existing and not refusal then
    -- A parent answers for its whole group; its children were checked with it.
    local jobs, total = 1, max_price(ctx, job)
    if is_parent then
      jobs, total = 1 + (group_size[f.id] or 0), group_need[f.id] or 0
    else
      need = total
    end
    l = limits_of(f.tenant)
    local checked = f.parent and f.parent ~= ''
    if not checked and l.max_queued > 0 and l.queued + jobs > l.max_queued then
      refusal = 'LIMIT max_queued ' .. l.max_queued
    elseif not checked and l.max_in_flight > 0 and l.in_flight + jobs > l.max_in_flight then
      refusal = 'LIMIT max_in_flight ' .. l.max_in_flight
    end
    local money_batch = f.mbatch or f.batch
    if not refusal and money_batch and money_batch ~= '' then
      b = budget_of(money_batch, tonumber(f.budget or '0') or 0)
      if not checked and b.budget > 0 and b.committed + total > b.budget then
        refusal = 'BUDGET ' .. money_str(b.budget) .. ' ' .. money_str(b.committed) .. ' ' ..
                  money_str(total)
      end
    end
    if not refusal and f.bill == '1' then
      w = wallet_of(ctx, f.tenant)
      if not checked and w and w.balance < total then
        refusal = 'WALLET ' .. money_str(w.balance) .. ' ' .. money_str(total)
      end
    end
    if is_parent then
      w = false  -- the parent itself is never billed
      if refusal then refused_parent[f.id] = refusal end
    end
  end
  if existing then
    if is_parent then duplicate_parent[f.id] = existing end
    out[#out + 1] = existing
    out[#out + 1] = 1
  elseif refusal then
    out[#out + 1] = ''
    out[#out + 1] = refusal
  else
    if idem_key then redis.call('SET', idem_key, f.id, 'EX', idem_ttl) end
    l.queued = l.queued + 1
    l.in_flight = l.in_flight + 1
    if b then b.committed = b.committed + need end
    if w then job.bill = '1' end
    move_money(ctx, job, 'reserve', need, 0)
    if job.bill == '1' then fields[#fields + 1] = 'bill'; fields[#fields + 1] = '1' end
    fields[#fields + 1] = 'attempt'; fields[#fields + 1] = 1
    fields[#fields + 1] = 'created'; fields[#fields + 1] = now
    local waits = f.parent and chain_parent[f.parent] and (tonumber(f.index) or 0) > 0
    local detail = 'submitted'
    if waits then detail = 'submitted; waits for shots[' .. (tonumber(f.index) - 1) .. ']' end
    transition(ctx, job, 'PENDING', '', detail, fields)
    if not is_parent and not waits then
      local p = pending[f.tenant]
      if not p then p = {}; pending[f.tenant] = p end
      p[#p + 1] = f.score; p[#p + 1] = f.id
    end
    all[#all + 1] = now; all[#all + 1] = f.id
    if f.batch and f.batch ~= '' then
      local bj = by_batch[f.batch]
      if not bj then bj = {}; by_batch[f.batch] = bj end
      bj[#bj + 1] = now; bj[#bj + 1] = f.id
      count(ctx, P .. ':batch:' .. f.batch, 'total', 1)
    end
    out[#out + 1] = f.id
    out[#out + 1] = 0
  end
end
if #all > 0 then
  local vt = redis.call('HGET', P .. ':meta', 'vt') or 0
  for tenant, p in pairs(pending) do
    redis.call('ZADD', P .. ':pending:' .. tenant, unpack(p))
    redis.call('ZADD', P .. ':active', 'NX', vt, tenant)
  end
  redis.call('ZADD', P .. ':jobs', unpack(all))
  for batch, bj in pairs(by_batch) do
    redis.call('ZADD', P .. ':batch:' .. batch .. ':jobs', unpack(bj))
  end
  wake_dispatch(ctx)
end
flush(ctx)
return out
