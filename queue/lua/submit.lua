-- Admits many jobs as PENDING in one call (a chunk of a SubmitBatch stream, or one SubmitJob),
-- or answers with the job that already holds an item's idempotency key, or refuses an item that
-- its tenant's limits, its batch's budget or its tenant's wallet cannot take (issue 12).
-- ARGV: P now idem_ttl_s n groups(0|1) nc, then nc named call fields, then per job: k and k
-- named fields (job_codec.cpp's AppendNewJobs). A call field holds for every job of the call:
-- C++ sends a field there when all the call's jobs hold it alike (a SubmitBatch chunk's tenant,
-- batch, models and settings), and then in no job. Call-only names, not stored: `id` (each
-- job's own), `score` (its place in its tenant's dispatch queue, JobStore::PendingScore) and
-- `budget` (its batch's budget in micro-dollars, when stated); a job sends its call-only
-- fields before its stored ones. Every other field is stored as sent, with `state` PENDING and
-- `created` = now; what is left out is supplied by the readers (AppendNewJobs says what).
-- A group's parent carries kind children nchildren [chain], each of its children parent index;
-- `groups` = 1 when some job of the call is a group's parent or child.
-- A group's parent waits outside the pending queues (common_groups.lua, group_child_ended) and holds
-- no money: its children are ordinary billed jobs. Its children come after it in the same call;
-- the group is taken or refused whole (limits, budget and wallet checked for all its children
-- at the parent), and none of the children is stored when the parent was a duplicate.
-- A chain's shots after the first wait PENDING outside the queues too, each until the shot
-- before it succeeds (common_groups.lua, chain_next); they are reserved for here like every child.
-- Returns per job {id, duplicate(0|1)} or {'', refusal}, in order; a refusal is
-- 'LIMIT <name> <limit>', 'BUDGET <budget> <committed> <needed>' or
-- 'WALLET <available> <needed>'.
-- Cost (issue 11): per job one HSET of the call's stored fields and its own (plus `hold` when
-- it reserves money, `mbatch` for a group's child, `h:1` only when its first history entry
-- is not the plain "submitted" that JobRecord::Decode supplies, and `seq` for a job outside the
-- dispatch queues, which alone gets a state:PENDING entry), and a GET/SET when it carries an
-- idempotency key (a duplicate's SET writes the key again unchanged, for the caller's WAIT). No per-job Lua table for a plain job and no number formatting per job:
-- the indexes, counters and events are gathered per call and written once each, scored with
-- `now` as sent.
local P, now_text, idem_ttl = ARGV[1], ARGV[2], ARGV[3]
local n, has_groups, nc = tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local now = tonumber(now_text)
local ctx = new_ctx(P, now, now_text)
local out, nout = {}, 0

-- The fields a job's logic reads, by name: the call's values, then the job's own.
local WANT = {tenant = 1, batch = 2, idem = 3, models = 4, secs = 5, res = 6, bill = 7,
              kind = 8, parent = 9, index = 10, chain = 11, webhook = 12, score = 13, budget = 14}
local NWANT = 14
local CALL_ONLY = {id = true, score = true, budget = true}
local call_v = {}
for k = 1, NWANT do call_v[k] = false end
-- `fields`: the HSET's field list, the call's stored fields first (kept), each job's after them.
local fields, nbase = {'state', 'PENDING', 'created', now_text}, 4
for x = 7, 6 + 2 * nc, 2 do
  local name = ARGV[x]
  local k = WANT[name]
  if k then call_v[k] = ARGV[x + 1] end
  if not CALL_ONLY[name] then
    fields[nbase + 1] = name
    fields[nbase + 2] = ARGV[x + 1]
    nbase = nbase + 2
  end
end
local first_job = 7 + 2 * nc
local job_prefix = jkey(P, '')
-- v[]: the call's values with the job's own over them; `touched` names what the last job
-- overrode, so a job with none of its own (the usual case) costs no reset.
local v, touched, ntouched = {}, {}, 0
for k = 1, NWANT do v[k] = call_v[k] end
local id, first, last = nil, 0, 0
-- Reads the job whose field count is at ARGV[i] into id, v[] and the range first..last of its
-- stored fields; returns where the next job starts.
local function scan(i)
  last = i + 2 * tonumber(ARGV[i])
  i = i + 1
  for t = 1, ntouched do v[touched[t]] = call_v[touched[t]] end
  ntouched = 0
  id = nil
  while i < last and CALL_ONLY[ARGV[i]] do
    if ARGV[i] == 'id' then
      id = ARGV[i + 1]
    else
      local k = WANT[ARGV[i]]
      v[k] = ARGV[i + 1]
      ntouched = ntouched + 1
      touched[ntouched] = k
    end
    i = i + 2
  end
  first = i
  for x = first, last, 2 do
    local k = WANT[ARGV[x]]
    if k then
      v[k] = ARGV[x + 1]
      ntouched = ntouched + 1
      touched[ntouched] = k
    end
  end
  return last + 1
end

-- The most a job can cost per second over its candidate models at its resolution (the
-- catalogue's prices, read once per call).
local per_second = {}
local function max_per_second(models, res)
  local byres = per_second[models]
  if not byres then byres = {}; per_second[models] = byres end
  local most = byres[res]
  if not most then
    most = 0
    for m in string.gmatch(models, '[^,]+') do
      most = math.max(most, model_price(ctx, m, res))
    end
    byres[res] = most
  end
  return most
end
local need_models, need_res, need_most = nil, nil, 0  -- the last job's, kept
local function need_of()
  local models, res = v[4] or '', v[6] or ''
  if models == '' then return 0 end
  if models ~= need_models or res ~= need_res then
    need_models, need_res, need_most = models, res, max_per_second(models, res)
  end
  if need_most == 0 then return 0 end
  return need_most * (tonumber(v[5]) or 0)
end

local limits = {}     -- tenant -> {max_queued, max_in_flight, queued, in_flight}
local budgets = {}    -- batch -> {budget, committed}
local function limits_of(tenant)
  local l = limits[tenant]
  if not l then
    l = tenant_limits(P, tenant)
    limits[tenant] = l
  end
  return l
end
-- A stated budget above the batch's raises it (a lower one changes nothing: what the batch has
-- committed may already be past it). It holds for the call's checks at once, and is stored with
-- the call's first job stored (`save`): a call whose every item was refused leaves no record.
local function budget_of(batch, stated)
  local b = budgets[batch]
  if not b then
    local key = P .. ':batch:' .. batch
    local h = redis.call('HMGET', key, 'budget', 'cost')
    b = {budget = tonumber(h[1] or '0') or 0, committed = tonumber(h[2] or '0') or 0, key = key,
         save = false}
    if stated > b.budget then b.budget, b.save = stated, true end
    budgets[batch] = b
  end
  return b
end

-- A batch's webhook (batch_webhook.lua), read from its record once per call: every job stored
-- into the batch reports its end there (flag 'b', common_webhook.lua), and, when the hook asks
-- for every job's end, one without a webhook of its own sends its end to the hook's URL. Decided
-- here, from Redis, so a job submitted through any scheduler, however long after the hook was
-- set, reports to it. Only the jobs of the tenant that set it (any, when set by an admin or
-- without authentication). `memo`: each job's own webhook field -> the field it is stored with.
local batch_hooks = {}  -- batch -> {url, tenant, all, memo} or false
local function batch_hook_of(batch)
  local h = redis.call('HMGET', P .. ':batch:' .. batch, 'webhook', 'wh_tenant', 'wh_all')
  local hook = false
  if h[1] and h[1] ~= '' then
    hook = {url = h[1], tenant = h[2] or '', all = h[3] == '1', memo = {}}
  end
  batch_hooks[batch] = hook
  return hook
end
local function with_batch_hook(own, hook)
  local flags, url = '', ''
  local bar = string.find(own, '|', 1, true)
  if bar then flags, url = string.sub(own, 1, bar - 1), string.sub(own, bar + 1) end
  if string.find(flags, 'b', 1, true) then return own end
  flags = flags .. 'b'
  if url == '' and hook.all then flags, url = flags .. 'e', hook.url end
  return flags .. '|' .. url
end

-- Groups: what a parent's children need together (jobs and the most they can cost), the
-- batch their money counts against (`mbatch`: their parent's, common_groups.lua's move_money), and
-- which parents are chains. One pass over the call, only when it holds groups.
local group_size, group_need, parent_batch, chain_parent = {}, {}, {}, {}
if has_groups then
  local i = first_job
  for _ = 1, n do
    i = scan(i)
    if v[8] and v[8] ~= '' then
      parent_batch[id] = v[2] or ''
      if v[11] == '1' then chain_parent[id] = true end
    elseif v[9] and v[9] ~= '' then
      group_size[v[9]] = (group_size[v[9]] or 0) + 1
      group_need[v[9]] = (group_need[v[9]] or 0) + need_of()
    end
  end
end
local duplicate_parent = {}  -- parent id -> the existing job that holds its idempotency key
local refused_parent = {}    -- parent id -> the refusal of its whole group

-- Gathered for the call, per tenant (its jobs in submit order, its dispatch-queue entries, and
-- per batch its "submitted" events) and per batch (its jobs): the last job's tenant and batch
-- are kept in locals, so a call of one tenant and batch looks each up once.
local by_tenant, tenant_order = {}, {}   -- tenant -> {n, ids, nq, queue, ev}
local by_batch, batch_order = {}, {}     -- batch -> {n, ids}
local all, nall = {}, 0  -- {now, id, ...}: state:PENDING, for jobs outside the queues
local added = 0
local pending_models = {}  -- models list -> jobs now PENDING under each of them
local event_tail = '\31' .. 'PENDING' .. '\31\31' .. now_text .. '\31'
local cur_tenant, cur_batch, T, B, E = nil, nil, nil, nil, nil

local i = first_job
for _ = 1, n do
  i = scan(i)
  local tenant, batch, idem = v[1] or '', v[2] or '', v[3]
  local kind, parent = v[8] or '', v[9] or ''
  local is_parent, is_child = kind ~= '', parent ~= ''
  local mbatch = is_child and parent_batch[parent] or nil
  if mbatch == '' then mbatch = nil end
  local idem_key = nil
  local existing = false
  local refusal = nil
  if is_child and duplicate_parent[parent] then
    existing = duplicate_parent[parent]
  elseif is_child and refused_parent[parent] then
    refusal = refused_parent[parent]
  elseif idem and idem ~= '' then
    idem_key = P .. ':idem:' .. tenant .. ':' .. idem
    existing = redis.call('GET', idem_key)
  end
  local need = 0
  local l, b, w = nil, nil, false
  if not existing and not refusal then
    -- A parent answers for its whole group; its children were checked with it.
    local jobs, total = 1, need_of()
    if is_parent then
      jobs, total = 1 + (group_size[id] or 0), group_need[id] or 0
    else
      need = total
    end
    l = limits[tenant] or limits_of(tenant)
    if not is_child and l.max_queued > 0 and l.queued + jobs > l.max_queued then
      refusal = 'LIMIT max_queued ' .. l.max_queued
    elseif not is_child and l.max_in_flight > 0 and l.in_flight + jobs > l.max_in_flight then
      refusal = 'LIMIT max_in_flight ' .. l.max_in_flight
    end
    local money_batch = mbatch or batch
    if not refusal and money_batch ~= '' then
      b = budgets[money_batch] or budget_of(money_batch, tonumber(v[14]) or 0)
      if not is_child and b.budget > 0 and b.committed + total > b.budget then
        refusal = 'BUDGET ' .. money_str(b.budget) .. ' ' .. money_str(b.committed) .. ' ' ..
                  money_str(total)
      end
    end
    if not refusal and v[7] == '1' then
      w = wallet_of(ctx, tenant)
      if not is_child and w and w.balance < total then
        refusal = 'WALLET ' .. money_str(w.balance) .. ' ' .. money_str(total)
      end
    end
    if is_parent then
      w = false  -- the parent itself is never billed
      if refusal then refused_parent[id] = refusal end
    end
  end
  if existing then
    -- Written again, unchanged: WAIT counts only this connection's own writes, so a duplicate
    -- that wrote nothing would be confirmed at once (redis.wait_replicas) while the replicas may
    -- still lack the original (its first answer's WAIT fell short, on another connection).
    -- Replication is ordered: a replica that has this write has the original too.
    if idem_key then redis.call('SET', idem_key, existing, 'KEEPTTL') end
    if is_parent then duplicate_parent[id] = existing end
    out[nout + 1] = existing
    out[nout + 2] = 1
  elseif refusal then
    out[nout + 1] = ''
    out[nout + 2] = refusal
  else
    if idem_key then redis.call('SET', idem_key, id, 'EX', idem_ttl) end
    if b and b.save then
      redis.call('HSET', b.key, 'budget', money_str(b.budget))
      b.save = false
    end
    l.queued = l.queued + 1
    l.in_flight = l.in_flight + 1
    local waits = is_child and chain_parent[parent] and (tonumber(v[10]) or 0) > 0
    local detail = 'submitted'
    if waits then detail = 'submitted; waits for shots[' .. (tonumber(v[10]) - 1) .. ']' end
    -- The job's stored fields after the call's, then what this job's HSET adds to them.
    local m = nbase
    for x = first, last do
      m = m + 1
      fields[m] = ARGV[x]
    end
    -- Billed only when its tenant had a wallet now, as reserved below: a record stating bill=1
    -- with nothing reserved would have a later refund or settle (once a top-up made the wallet)
    -- move money that was never taken.
    if v[7] == '1' and not w then
      m = m + 2
      fields[m - 1], fields[m] = 'bill', '0'
    end
    if need ~= 0 then
      if b then b.committed = b.committed + need end
      -- Money moves only here and in move_money: a table only for a job that reserves.
      local job = {id = id, tenant = tenant, batch = batch, mbatch = mbatch, hold = 0, cost = 0,
                   bill = w and '1' or '0', models = v[4]}
      move_money(ctx, job, 'reserve', need, 0)
      fields[m + 1], fields[m + 2] = 'hold', money_str(need)
      m = m + 2
    end
    if mbatch then
      fields[m + 1], fields[m + 2] = 'mbatch', mbatch
      m = m + 2
    end
    if waits then
      fields[m + 1], fields[m + 2] = 'h:1', 'PENDING||' .. now_text .. '|' .. detail
      m = m + 2
    end
    if is_parent or waits then
      -- In state:PENDING (below): a record with a `seq` is in its state's index (read_job).
      fields[m + 1], fields[m + 2] = 'seq', '1'
      m = m + 2
    end
    local hook = v[12]
    if batch ~= '' then
      local bh = batch_hooks[batch]
      if bh == nil then bh = batch_hook_of(batch) end
      if bh and (bh.tenant == '' or bh.tenant == tenant) then
        local own = hook or ''
        local stored = bh.memo[own]
        if not stored then
          stored = with_batch_hook(own, bh)
          bh.memo[own] = stored
        end
        if stored ~= own then
          -- After the call's fields: HSET keeps a field's last value.
          fields[m + 1], fields[m + 2] = 'webhook', stored
          m = m + 2
          hook = stored
        end
      end
    end
    redis.call('HSET', job_prefix .. id, unpack(fields, 1, m))
    -- As transition() from no state to PENDING: counters, indexes, the event, the webhook.
    if tenant ~= cur_tenant then
      T = by_tenant[tenant]
      if not T then
        T = {n = 0, ids = {}, nq = 0, queue = {}, ev = {}}
        by_tenant[tenant] = T
        tenant_order[#tenant_order + 1] = tenant
      end
      cur_tenant, cur_batch = tenant, nil
    end
    if batch ~= cur_batch then
      B = nil
      if batch ~= '' then
        B = by_batch[batch]
        if not B then
          B = {n = 0, ids = {}}
          by_batch[batch] = B
          batch_order[#batch_order + 1] = batch
        end
      end
      E = T.ev[batch]
      if not E then
        E = {n = 0, ids = {}}
        T.ev[batch] = E
      end
      cur_batch = batch
    end
    local k = T.n + 1
    T.n = k
    T.ids[k] = id
    if not is_parent and not waits then
      k = T.nq
      T.queue[k + 1] = v[13] or now_text
      T.queue[k + 2] = id
      T.nq = k + 2
    end
    if B then
      k = B.n + 1
      B.n = k
      B.ids[k] = id
    end
    if is_parent or waits then
      -- Outside the dispatch queues: in state:PENDING (list.lua's pending_page finds a plain
      -- job in its tenant's queue until its first transition).
      all[nall + 1] = now_text
      all[nall + 2] = id
      nall = nall + 2
    end
    added = added + 1
    local models = v[4]
    if models and models ~= '' then pending_models[models] = (pending_models[models] or 0) + 1 end
    if waits then
      ctx.events[#ctx.events + 1] = id .. '\31' .. '1' .. event_tail .. batch .. '\31' ..
                                    tenant .. '\31' .. detail
    else
      k = E.n + 1
      E.n = k
      E.ids[k] = id
    end
    if hook and hook ~= '' then
      webhook_note(ctx, {id = id, tenant = tenant, batch = batch, webhook = hook}, 'PENDING',
                   '', 1, detail, {})
    end
    out[nout + 1] = id
    out[nout + 2] = 0
  end
  nout = nout + 2
end
if added > 0 then
  for _, tenant in ipairs(tenant_order) do
    if tenant ~= '' then count(ctx, P .. ':tlive:' .. tenant, 'PENDING', by_tenant[tenant].n) end
  end
  for models, c in pairs(pending_models) do
    for m in string.gmatch(models, '[^,]+') do count(ctx, P .. ':model:' .. m, 'q_pending', c) end
  end
  for _, batch in ipairs(batch_order) do
    local c = by_batch[batch].n
    count(ctx, P .. ':batch:' .. batch, 'PENDING', c)
    count(ctx, P .. ':batch:' .. batch, 'total', c)
    -- A job is stored under the id: its tenant's claim (auth_claim_batch.lua) lasts now, and so
    -- does a record its webhook made before its first job (batch_webhook.lua).
    redis.call('PERSIST', P .. ':auth:batch:' .. batch)
    if batch_hooks[batch] then redis.call('PERSIST', P .. ':batch:' .. batch) end
  end
  local vt = activation_vt(P)
  for _, tenant in ipairs(tenant_order) do
    local t = by_tenant[tenant]
    if t.nq > 0 then
      redis.call('ZADD', P .. ':pending:' .. tenant, unpack(t.queue, 1, t.nq))
      redis.call('ZADD', P .. ':active', 'NX', vt, tenant)
    end
  end
  if nall > 0 then redis.call('ZADD', P .. ':state:PENDING', unpack(all, 1, nall)) end
  -- No all-jobs index: list.lua merges the tenants' (and `jobs` for a job without a tenant).
  -- A tenant's jobs are one entry per call, not one sorted-set entry per job (~2.5 us and ~100
  -- bytes a job less): `tenant:<t>:calls` scores the call's number by `now`, and the hash
  -- `tenant:<t>:callids` holds its ids in submit order (field <n>) and how many of them are
  -- still in Redis (field #<n>, which retention.lua counts down to drop the call); `meta`
  -- `calls` numbers the calls of every tenant, written with 15 digits (a call's number names
  -- one tenant's call and sorts as text in submit order, so list.lua's merged order, (time,
  -- call, position), is submit order and has no ties across tenants).
  for _, tenant in ipairs(tenant_order) do
    local t = by_tenant[tenant]
    if tenant == '' then
      local z = {}
      for k = 1, t.n do z[2 * k - 1] = now_text; z[2 * k] = t.ids[k] end
      redis.call('ZADD', P .. ':jobs', unpack(z))
    else
      local base = P .. ':tenant:' .. tenant
      local call = string.format('%015d', redis.call('HINCRBY', P .. ':meta', 'calls', 1))
      redis.call('ZADD', base .. ':calls', now_text, call)
      redis.call('HSET', base .. ':callids', call, table.concat(t.ids, ',', 1, t.n),
                 '#' .. call, t.n)
      redis.call('SADD', P .. ':tenants', tenant)
    end
  end
  -- A batch's jobs in submit order: a list, appended per call (~30 bytes a job; a sorted-set
  -- entry is ~130). A batch begun by the previous layout keeps its sorted set.
  for _, batch in ipairs(batch_order) do
    local ids = by_batch[batch].ids
    local b = P .. ':batch:' .. batch
    if redis.call('EXISTS', b .. ':jobs') == 1 then
      local z = {}
      for k, id in ipairs(ids) do z[2 * k - 1] = now_text; z[2 * k] = id end
      redis.call('ZADD', b .. ':jobs', unpack(z))
    else
      redis.call('RPUSH', b .. ':ids', unpack(ids))
    end
  end
  wake_dispatch(ctx)
end
-- The plain "submitted" events: one stream entry with one `s` field per batch and tenant of the
-- call, "<id,id,...>\31<now>\31<batch>\31<tenant>" (ReadEvents in job_store.cpp gives each job
-- its own event: seq 1, PENDING, detail "submitted"), ~27 bytes a job instead of ~80.
local args = {P .. ':events', 'MAXLEN', '~', 100000, '*'}
for _, tenant in ipairs(tenant_order) do
  for batch, e in pairs(by_tenant[tenant].ev) do
    if e.n > 0 then
      args[#args + 1] = 's'
      args[#args + 1] = table.concat(e.ids, ',', 1, e.n) .. '\31' .. now_text .. '\31' ..
                        batch .. '\31' .. tenant
    end
  end
end
if #args > 5 then redis.call('XADD', unpack(args)) end
flush(ctx)
return out
