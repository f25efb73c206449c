-- One dispatch round: moves PENDING jobs to DISPATCHED with a reserved account slot and create
-- token, fairly between tenants (deficit round robin by weight) and, per job, to the allowed
-- model with the earliest expected finish. Atomic, so any number of schedulers may call it.
-- ARGV: P now max_jobs scan_depth default_weight [policy] [margin_s]
-- policy `fifo` (a baseline for bench/schedule): tenants are served in the order of their head
-- job's pending score (one global queue by priority, deadline, age) instead of by fair share.
-- margin_s: the first-choice preference margin (scheduler.preference_margin_seconds): a job
-- that prefers its first candidate (submit's `pref`) goes there unless another candidate's
-- expected finish is earlier by more than this many seconds.
-- A job goes straight to a worker waiting for work (`wwait`, common_lease.lua) while one has
-- room: leased in this call (DISPATCHED then RUNNING, one write of its record), its lease pushed
-- to the worker; the others go to `ready`, where a worker's lease call finds them.
-- Returns {dispatched, expired, wait_ms}: wait_ms is when a token or cooldown next frees up
-- (0 when unknown or when work remains).
local P, now = ARGV[1], tonumber(ARGV[2])
local max_jobs, depth, default_weight = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local fifo = ARGV[6] == 'fifo'
local margin = math.max(0, tonumber(ARGV[7]) or 0)
local day = math.floor(now / 86400000)

local ctx = new_ctx(P, now, ARGV[2])
-- meta, read once: the virtual clock, activation_vt's credit (common.lua; vt_floor below) and
-- whether parked jobs wait to be moved back (`unpark`).
local meta = redis.call('HMGET', P .. ':meta', 'vt', 'activation_credit', 'unpark')
local vt_floor = (tonumber(meta[1]) or 0) - (tonumber(meta[2]) or ACTIVATION_CREDIT)
-- Parked jobs a top-up or a config reload let go but could not all move in its own call
-- (common_groups.lua, unpark): up to UNPARK_MAX more a round, from up to 64 tenants, before
-- the round reads which tenants are active.
-- 'funds': those whose need the wallet's balance covers now; 'all' (a price lowered): every one.
if meta[3] then
  local budget, visited = UNPARK_MAX, 0
  local todo = redis.call('HGETALL', P .. ':unpark')
  for i = 1, #todo, 2 do
    if budget <= 0 or visited >= 64 then break end
    visited = visited + 1
    local t, balance = todo[i], nil
    if todo[i + 1] == 'funds' then
      local w = wallet_of(ctx, t)
      balance = w and w.balance or nil
    end
    budget = budget - unpark(P, t, budget, vt_floor, true, balance)
  end
  if redis.call('HLEN', P .. ':unpark') == 0 then
    redis.call('HDEL', P .. ':meta', 'unpark')
  elseif redis.call('LLEN', P .. ':dwake') == 0 then
    redis.call('LPUSH', P .. ':dwake', '1')  -- more to move: the next round comes at once
  end
end

local tenants = redis.call('ZRANGE', P .. ':active', 0, -1, 'WITHSCORES')
if #tenants == 0 then return {0, 0, 0} end

-- Live account state, refilled to `now`.
local accounts = {}
local wait_ms = 0
local function note_wait(ms)
  if ms > 0 and (wait_ms == 0 or ms < wait_ms) then wait_ms = ms end
end
local function account(id)
  local a = accounts[id]
  if a then return a end
  local h = redis.call('HMGET', P .. ':acct:' .. id, 'rpm', 'max_concurrent', 'daily_cap', 'tokens',
                       'refill_ms', 'in_flight', 'day', 'used_today', 'cooldown_until',
                       'learned_rpm', 'learned_conc', 'learned_at', 'learned_conc_at')
  local rpm = effective_rpm(tonumber(h[1]) or 0, tonumber(h[10]), tonumber(h[12]), now)
  local conc = effective_conc(tonumber(h[2]) or 0, tonumber(h[11]), tonumber(h[13]), now)
  -- A bucket of one second's worth (at least one token), refilled at (rpm - burst + 1) a
  -- minute: a full bucket spent at once plus a minute of refill is then at most rpm creates,
  -- so no sliding 60 s window (as providers count) ever sees more than the limit.
  local burst = math.max(1, rpm / 60)
  local rate = math.max(0, rpm - burst + 1) / 60000  -- tokens per ms
  local tokens = tonumber(h[4]) or burst
  local refill = tonumber(h[5]) or now
  if now > refill then tokens = tokens + (now - refill) * rate end
  -- Clamped always: a lowered (learned) rate shrinks the bucket at once.
  tokens = math.min(burst, tokens)
  local used = tonumber(h[8]) or 0
  if tonumber(h[7]) ~= day then used = 0 end
  a = {id = id, rpm = rpm, rate = rate, conc = conc, cap = tonumber(h[3]) or 0, tokens = tokens,
       in_flight = tonumber(h[6]) or 0, used = used, cooldown = tonumber(h[9]) or 0,
       dirty = false}
  accounts[id] = a
  return a
end
local function usable(a)
  if a.cooldown > now then note_wait(a.cooldown - now); return false end
  if a.in_flight >= a.conc then return false end
  if a.cap > 0 and a.used >= a.cap then return false end
  if a.tokens < 1 then
    if a.rate > 0 then note_wait(math.ceil((1 - a.tokens) / a.rate)) end
    return false
  end
  return true
end

-- Per model: its accounts, latency estimate and how many jobs already wait on it this round.
local models = {}
local function model(id)
  local m = models[id]
  if m then return m end
  local h = redis.call('HMGET', P .. ':model:' .. id, 'accounts', 'lat', 'q_pending')
  m = {id = id, accounts = {}, lat = tonumber(h[2]) or 60, waiting = 0, known = h[1] ~= false,
       queued = (tonumber(h[3]) or 0) > 0, asked = false,
       cap_spent = -1, cap_best = false, cap_total = 0, cap_free = 0, cap_cps = 0}
  if h[1] then for acc in string.gmatch(h[1], '[^,]+') do m.accounts[#m.accounts + 1] = acc end end
  models[id] = m
  return m
end
-- Accounts change during a round only when a job is dispatched (its account's token and slot
-- spent): `spent` counts those, and what capacity() and all_full() found holds until it moves.
-- A round that holds jobs for busy models asks both again for every job it scans (~57k
-- instructions a held job without this, bench/schedule's rounds scanning ~8 of them).
local spent = 0

-- The account of `m` with the most free slots that can take a create now, and the model's
-- total and free capacity.
local function capacity(m)
  m.asked = true
  if m.cap_spent == spent then return m.cap_best, m.cap_total, m.cap_free, m.cap_cps end
  local best, best_free, total, free = nil, -1, 0, 0
  local creates_per_s = 0
  for _, acc in ipairs(m.accounts) do
    local a = account(acc)
    if a.cooldown <= now then
      total = total + a.conc
      creates_per_s = creates_per_s + a.rate * 1000
    end
    if usable(a) then
      local f = a.conc - a.in_flight
      free = free + f
      if f > best_free or (f == best_free and a.tokens > best.tokens) then
        best, best_free = a, f
      end
    end
  end
  m.cap_spent, m.cap_best, m.cap_total, m.cap_free, m.cap_cps =
    spent, best, total, free, creates_per_s
  return best, total, free, creates_per_s
end

-- reelq's one routing rule (tests/queue/routing_redistest.cpp): among the job's candidates
-- (admission already dropped models that cannot make it), the earliest expected finish.
-- Expected seconds to finish on `m`: generation latency (`lat`, complete.lua's clamped moving
-- average), plus, when no slot is free now, the wait for one: jobs ahead of us drain at
-- `total / lat` per second, or at the accounts' create rate when that is lower (a rate-bound
-- model is not faster for having free slots). A model with no account out of cooldown has no
-- expected finish and never wins. `prefer`: every candidate after the first is charged the
-- preference margin, so the first choice wins unless another finishes more than `margin`
-- seconds earlier; ties go to the earlier candidate.
-- A billed job only goes to a model its hold plus its wallet's balance can pay for (after a
-- billed failed attempt or a RetryJob its hold may be less than the price; it then waits for
-- a top-up). Nor, billed or not, to one whose price past its hold would take its batch's cost
-- over the batch's budget: when that rules out every model it could go to, the third value
-- says by how much the cheapest misses (the job cannot go, whatever frees up). When the wallet
-- rules out every model the budget leaves it, the fifth value is what the wallet's balance must
-- hold for the cheapest of them (past the job's hold): the job is parked until then
-- (common_groups.lua, unpark).
local function choose(job, prefer)
  local best_acc, best_model, best_eft = nil, nil, nil
  local index = 0
  local afford = affordable(ctx, job)
  local hold = tonumber(job.hold) or 0
  local room, over, fits = nil, nil, false
  local need, paid = nil, false  -- the least a fitting model needs past the hold; one is affordable
  local orphaned = true  -- every candidate known and without an account (sync_config.lua)
  for cand in string.gmatch(job.models, '[^,]+') do
    index = index + 1
    local m = model(cand)
    if not m.known or #m.accounts > 0 then orphaned = false end
    local price = m.known and job_price(ctx, job, cand) or 0
    local within = true
    if m.known and price > hold then
      room = room or budget_room(ctx, job)
      if price - hold > room then
        within = false
        if not over or price - hold - room < over then over = price - hold - room end
      end
    end
    if m.known and within then
      fits = true
      if price <= afford then
        paid = true
      elseif not need or price - hold < need then
        need = price - hold
      end
    end
    if m.known and within and price <= afford then
      local acc, total, _, creates_per_s = capacity(m)
      local eft
      if acc then
        eft = m.lat
      elseif total > 0 then
        local drain = total / m.lat
        if creates_per_s > 0 and creates_per_s < drain then drain = creates_per_s end
        eft = m.lat + (m.waiting + 1) / drain
      end
      if eft and prefer and index > 1 then eft = eft + margin end
      if eft and (best_eft == nil or eft < best_eft) then
        best_acc, best_model, best_eft = acc, m, eft
      end
    end
  end
  return best_acc, best_model, not fits and over or nil, index > 0 and orphaned,
         fits and not paid and need or nil
end

-- Fairness by virtual time (start-time fair queuing): each active tenant carries a virtual
-- clock in the score of `active`; the tenant with the earliest clock that has a dispatchable job
-- goes next and its clock advances by 1/weight. A tenant that (re)activates starts a bounded
-- credit before the global clock (common.lua, activation_vt), so a small batch goes first for a
-- while but idle time earns nothing more. Shares of tenants that stay busy follow the weights to
-- within one job, even when capacity frees one slot at a time.
local weights_key = P .. ':weights'
local order = {}
for i = 1, #tenants, 2 do
  order[#order + 1] = {t = tenants[i], vt = tonumber(tenants[i + 1]), blocked = false}
end
local dispatched, expired = 0, 0
local ready = {}

-- Each tenant's queue head is read in pages as the round gets to them (8 ids, then 32, 128, up
-- to `depth + max_jobs`: a round removes at most max_jobs, so the first `depth` still left are
-- always within that), and each job's fields once, however often the round looks at it. Read
-- whole up front, a round that dispatched one job still turned 320 ids and scores into Lua
-- values per tenant (~0.7 of a 1.1 ms round in bench/schedule, where most rounds refill one freed
-- slot). Nothing changes a queue during a round (its removals are written at the end), so a page
-- starts where the last one ended. The queue left is ids[first..]: a round mostly takes its head,
-- which moves `first` on instead of shifting the arrays (table.remove: ~10 instructions per
-- element per call, in Lua's C API).
local HEAD_PAGE = 8
-- Jobs whose every model is cooling down do not count against `depth` (below, `cooled`): a page
-- reaches as many ids further as the round passed such jobs, up to SCAN_CAP + max_jobs in all.
local SCAN_CAP = 16 * depth
-- How many such jobs the whole round passes so, all tenants together: each one passed costs a
-- record read, and a per-tenant allowance alone let every round read 16 x depth records of each
-- tenant for as long as a model cools (5 tenants, two schedulers a round every 100 ms: Redis
-- busy with nothing else). Past it, a cooling model's jobs count against `depth` as any held job.
local cooled_budget = SCAN_CAP
-- Reads the tenant's next page; false when its queue has no more.
local function fetch(e)
  if e.exhausted then return false end
  local want = math.min(e.page, math.min(depth + (e.cooled or 0), SCAN_CAP) + max_jobs - e.fetched)
  if want <= 0 then return false end
  local r = redis.call('ZRANGE', P .. ':pending:' .. e.t, e.fetched, e.fetched + want - 1,
                       'WITHSCORES')
  for i = 1, #r, 2 do
    e.ids[#e.ids + 1] = r[i]
    e.scores[#e.scores + 1] = tonumber(r[i + 1])
  end
  local got = #r / 2
  e.fetched = e.fetched + got
  if got < want then e.exhausted = true end
  e.page = e.page * 4
  return got > 0
end
local function head(e)
  if not e.ids then
    e.ids, e.scores, e.removed, e.first = {}, {}, {}, 1
    e.fetched, e.page, e.exhausted = 0, HEAD_PAGE, false
    fetch(e)
  end
  return e.ids
end
-- Takes ids[index] out of the queue; returns the index of the job after it.
local function remove(e, index)
  e.removed[#e.removed + 1] = e.ids[index]
  if index == e.first then
    e.first = index + 1
    return index + 1
  end
  table.remove(e.ids, index)
  table.remove(e.scores, index)
  return index
end
-- FIFO: a tenant's key is its head job's score (huge when empty); virtual clocks stay untouched.
local function head_key(e)
  head(e)
  if e.first > #e.ids then fetch(e) end
  e.key = e.scores[e.first] or math.huge
end
local vt_now = tonumber(meta[1] or '0') or 0
-- A tenant that stayed active while none of its jobs could go (all waiting for one busy model)
-- kept the clock of its last dispatch while the others' ran on: with no floor it would take
-- every dispatch once its jobs could go again, for as long as its lag. It gets no more than the
-- credit a newly active tenant gets (common.lua, activation_vt; vt_floor is read above).
for _, e in ipairs(order) do
  if not fifo and e.vt < vt_floor then
    e.vt = vt_floor
    e.dirty = true
  end
  if fifo then head_key(e) else e.key = e.vt end
end
-- Jobs this round chose to hold for a busy model: counted once in its `waiting`, and not chosen
-- again when the tenant's queue is scanned again this round (that would count them twice).
local held = {}
-- Jobs none of whose models has an account out of cooldown (a breaker, a 429): they cannot go
-- this round, whatever frees up, and are held without counting against `depth`, so that 200
-- jobs for a cooling Sora do not hide the tenant's Kling jobs behind them (up to SCAN_CAP a
-- tenant, and cooled_budget in the round).
local cooled = {}
local function cooling(j)
  for _, cand in ipairs(ctx_models(ctx, j.models)) do
    local m = model(cand)
    if not m.known or #m.accounts == 0 then return false end
    local _, total = capacity(m)
    if total > 0 then return false end
  end
  return true
end

-- Each job is read whole, once (common.lua, read_record): lease.lua reads the record again, so
-- nothing is handed over beside it.
local jobs = {}
-- A PENDING record without a field dispatch reads (corrupt: edited by hand, half-restored) would
-- raise and stop every round at it, for every tenant: it fails instead, naming the field, and
-- job_of answers false for it (dispatch_one takes it out of its queue). `tenant`: the queue it
-- was found in, which stands in for a missing `tenant` (its counters, a billed job's refund).
local function failed_corrupt(j, tenant)
  local missing = (j.models or '') == '' and 'models' or (j.tenant or '') == '' and 'tenant'
  if not missing then return false end
  if (j.tenant or '') == '' then j.tenant = tenant end
  move_money(ctx, j, 'refund', 0, 0)
  local text = 'corrupt record: no `' .. missing .. '`; the job cannot be dispatched: submit it again'
  transition(ctx, j, 'FAILED', '', text, {'err_cat', 'internal', 'err_msg', text, 'err_code',
                                           'corrupt_record', 'finished', now})
  expired = expired + 1
  return true
end
local function job_of(id, tenant)
  local j = jobs[id]
  if j == nil then
    j = read_record(P, id) or false
    if j and j.state == 'PENDING' and failed_corrupt(j, tenant) then j = false end
    jobs[id] = j
  end
  return j
end

-- Whether no job at all can be dispatched this round: no model that queued work may go to has
-- an account that can take a create now. A round then stops instead of reading up to `depth`
-- jobs of every tenant only to hold them (scheduler.dispatch_scan_depth is 64: when a freed slot
-- has been refilled, the rest of the round would otherwise read 64 job records per tenant for
-- nothing, every round, as long as the queue is deep). Queued work: a model a job looked at this
-- round asked for, or one whose `q_pending` (common.lua, depth_add: every PENDING job counted
-- under each of its candidates) is above 0; the catalogue's other models may have free accounts
-- but no job to give them.
local model_ids = nil
local round_full = false
-- `spent` when all_full() last found a usable account: it stays usable until a dispatch (a model
-- asked later only adds accounts to look at).
local usable_seen = -1
local function all_full()
  if usable_seen == spent then return false end
  if model_ids == nil then model_ids = redis.call('SMEMBERS', P .. ':models') end
  for _, id in ipairs(model_ids) do
    local m = model(id)
    if m.known and (m.asked or m.queued) then
      for _, acc in ipairs(m.accounts) do
        if usable(account(acc)) then
          usable_seen = spent
          return false
        end
      end
    end
  end
  return true
end

-- Workers waiting for work (lease.lua), read on the first job this round dispatches: those whose
-- lease is live and entry fresh (WAIT_FRESH_MS), each with its room; `direct` counts the jobs
-- leased to them.
local waiting, gone = nil, {}
local direct = 0
local function waiting_worker()
  if waiting == nil then
    waiting = {}
    local r = redis.call('HGETALL', P .. ':wwait')
    if #r > 0 then
      local names = {}
      for i = 1, #r, 2 do names[#names + 1] = r[i] end
      local until_ms = redis.call('ZMSCORE', P .. ':wlease', unpack(names))
      for k, w in ipairs(names) do
        local room, at = string.match(r[2 * k], '^(%d+):(%d+)$')
        room, at = tonumber(room) or 0, tonumber(at) or 0
        if until_ms[k] and tonumber(until_ms[k]) > now and room > 0 and
            at + WAIT_FRESH_MS >= now then
          waiting[#waiting + 1] = {id = w, room = room, at = at, jobs = {}}
        else
          gone[#gone + 1] = w  -- lapsed (the reaper hands its jobs on) or not asking lately
        end
      end
    end
  end
  local best = nil
  for _, w in ipairs(waiting) do
    if w.room > 0 and (best == nil or w.room > best.room) then best = w end
  end
  return best
end

-- The first dispatchable job among the first `depth` of the tenant's queue, dispatched; false
-- when none can go now. Jobs past their start deadline fail on the way.
local function dispatch_one(entry)
  local ids = head(entry)
  local index = entry.first
  local passed = 0  -- cooled jobs on the way: not counted in `depth`
  while index - entry.first - passed < depth and index - entry.first < SCAN_CAP do
    if index > #ids and not fetch(entry) then break end
    local id = ids[index]
    local j = job_of(id, entry.t)
    if not j or j.state ~= 'PENDING' then
      index = remove(entry, index)  -- cancelled, moved on by another path, or corrupt
    elseif tonumber(j.start_deadline) and tonumber(j.start_deadline) > 0 and
        tonumber(j.start_deadline) < now and (j.started or '') == '' then
      -- The start deadline holds for a job's first start only: one that started (a worker
      -- leased it: `started`) and waits again after a failure in passing has met it.
      index = remove(entry, index)
      move_money(ctx, j, 'refund', 0, 0)
      transition(ctx, j, 'FAILED', '', 'start deadline passed',
                 {'err_cat', 'deadline_exceeded', 'err_msg',
                  'the job had not started by its start deadline', 'finished', now,
                  'wait_need', ''})
      expired = expired + 1
    elseif not held[id] then
      local acc, m, over_budget, orphaned, need = choose(j, j.pref == '1')
      if orphaned then
        -- No model it may use has an account any more (removed from the configuration): it
        -- could only wait for good. It ends now, saying so.
        index = remove(entry, index)
        move_money(ctx, j, 'refund', 0, 0)
        local text = 'no model this job may use has an account configured any more (' ..
                         j.models .. '): add an account for one of them, or submit it again ' ..
                         'with other models'
        transition(ctx, j, 'FAILED', '', text,
                   {'err_cat', 'failed_precondition', 'err_msg', text, 'err_code', 'no_account',
                    'finished', now, 'wait_need', ''})
        expired = expired + 1
      elseif over_budget then
        -- An attempt (after a billed one, a RetryJob, or a price raised since submit) that no
        -- model fits in what is left of the budget: it could only wait for good. It ends now,
        -- saying what would let it run; the scan goes on from the next job.
        index = remove(entry, index)
        local left, budget = budget_room(ctx, j)
        move_money(ctx, j, 'refund', 0, 0)
        local over = over_budget
        local text = 'batch budget: this attempt would take batch ' .. (j.mbatch or j.batch) ..
                         ' past its budget of ' .. dollars(budget) .. ' (' ..
                         dollars(math.max(0, left)) .. ' left, ' .. dollars(over) ..
                         ' short at the cheapest allowed model); raise the budget and retry the job'
        transition(ctx, j, 'FAILED', '', text,
                   {'err_cat', 'failed_precondition', 'err_msg', text, 'err_code',
                    'budget_exceeded', 'finished', now, 'wait_need', ''})
        expired = expired + 1
      elseif need then
        -- Billed, and no model it may go to can be paid for by its hold and its wallet's
        -- balance: parked until something may pay for it (common_groups.lua, unpark), out of
        -- the queue (it would be read again by every round, and count against the scan depth
        -- in front of the tenant's jobs that can go). It stays PENDING; its record and its
        -- history say what it waits for. The scan goes on from the next job.
        local score = entry.scores[index]
        index = remove(entry, index)
        if not entry.parked then entry.parked, entry.needs = {}, {} end
        entry.parked[#entry.parked + 1] = score
        entry.parked[#entry.parked + 1] = id
        entry.needs[#entry.needs + 1] = string.format('%d', need)
        entry.needs[#entry.needs + 1] = id
        -- Its start deadline still holds while it is parked, out of every queue that this scan
        -- checks: `parkdl` (common_groups.lua) brings it back to its queue once the deadline has
        -- passed (reap.lua), where the check above fails it and refunds its hold.
        local deadline = tonumber(j.start_deadline) or 0
        if deadline > 0 and (j.started or '') == '' then
          if not entry.parkdl then entry.parkdl = {} end
          entry.parkdl[#entry.parkdl + 1] = string.format('%d', deadline)
          entry.parkdl[#entry.parkdl + 1] = id
        end
        -- A job still in no state index (submit.lua) gets a seq now: it is listed by
        -- `state:PENDING` from here on (list.lua lists a queued job only while it has none).
        if j.unindexed then redis.call('ZADD', P .. ':state:PENDING', ctx.now_s, id) end
        local need_s = string.format('%d', need)
        if j.wait_need == need_s then
          -- Let go (unpark) and parked again for the same need: its history, its watchers and
          -- its webhook already say what it waits for. A new transition each time a balance rose
          -- would grow its history, and send a job.pending delivery, for every refund.
          redis.call('HSET', jkey(P, id), 'waiting', 'funds')
        else
          local hold = tonumber(j.hold) or 0
          local w = wallet_of(ctx, j.tenant)
          local balance = w and w.balance or 0
          local text = 'waiting for funds: the cheapest model this job may use costs ' ..
                           dollars(hold + need) .. ' (' .. dollars(hold) .. ' of it held) and ' ..
                           'the wallet of ' .. j.tenant .. ' has ' .. dollars(balance) ..
                           ' available; it runs once the wallet is topped up by at least ' ..
                           dollars(math.max(0, need - balance))
          transition(ctx, j, 'PENDING', '', text, {'waiting', 'funds', 'wait_need', need_s})
        end
      elseif acc then
        -- The reservation follows the chosen model's price; its ledger entry names the model.
        -- transition() below records the move to the model (indexes, depth), so the job's own
        -- model is put back first: it must still say where the job comes from.
        local from_model = j.model
        j.model = m.id
        move_money(ctx, j, 'reprice', job_price(ctx, j, m.id), 0)
        j.model = from_model
        acc.tokens = acc.tokens - 1
        acc.in_flight = acc.in_flight + 1
        acc.used = acc.used + 1
        acc.dirty = true
        spent = spent + 1
        remove(entry, index)
        local w = waiting_worker()
        -- Leased to `w` below: its record is written once, after the lease's transition.
        if w then j.defer, j.count_later = true, true end
        local fields = {'model', m.id, 'account', acc.id, 'slot', acc.id, 'dispatched', ctx.now_s}
        -- Once parked: what it waited for is over (a later park writes its transition again).
        if (j.wait_need or '') ~= '' then
          fields[#fields + 1] = 'wait_need'
          fields[#fields + 1] = ''
        end
        transition(ctx, j, 'DISPATCHED', '', m.id .. ' via ' .. acc.id, fields)
        j.account, j.slot = acc.id, acc.id
        if w then
          w.room = w.room - 1
          w.jobs[#w.jobs + 1] = j
          direct = direct + 1
        else
          ready[#ready + 1] = id
        end
        return true
      elseif m then
        m.waiting = m.waiting + 1
        held[id] = true
      elseif cooling(j) then
        held[id] = true
        if cooled_budget > 0 then
          cooled_budget = cooled_budget - 1
          cooled[id] = true
          entry.cooled = (entry.cooled or 0) + 1
          passed = passed + 1
        end
      end
      if not over_budget and not orphaned and not need then
        if not acc and all_full() then
          round_full = true
          return false
        end
        index = index + 1
      end
    else
      -- Held for a busy model earlier this round: counted once already (a cooled one: not at all).
      if cooled[id] then passed = passed + 1 end
      index = index + 1
    end
  end
  return false
end

local weight_of = {}
while dispatched < max_jobs and not round_full do
  local best = nil
  for _, e in ipairs(order) do
    if not e.blocked and (best == nil or e.key < best.key) then best = e end
  end
  if best == nil then break end
  if dispatch_one(best) then
    dispatched = dispatched + 1
    if fifo then
      head_key(best)
    else
      if best.vt > vt_now then vt_now = best.vt end
      local weight = weight_of[best.t]
      if not weight then
        weight = tonumber(redis.call('HGET', weights_key, best.t) or default_weight) or 1
        if weight <= 0 then weight = default_weight end
        weight_of[best.t] = weight
      end
      best.vt = best.vt + 1 / weight
      best.dirty = true
      best.key = best.vt
    end
  else
    best.blocked = true
  end
end

local any_left = false
for _, e in ipairs(order) do
  if e.removed and #e.removed > 0 then
    redis.call('ZREM', P .. ':pending:' .. e.t, unpack(e.removed))
  end
  if e.parked then
    redis.call('ZADD', P .. ':parked:' .. e.t, unpack(e.parked))
    redis.call('ZADD', P .. ':parkneed:' .. e.t, unpack(e.needs))
    redis.call('SADD', P .. ':parked_t', e.t)
    if e.parkdl then redis.call('ZADD', P .. ':parkdl', unpack(e.parkdl)) end
  end
  -- Left in the queue: what the head reads saw and kept, or (when they did not reach its end)
  -- more.
  local left
  if e.ids and #e.ids >= e.first then
    left = true
  elseif e.ids and e.exhausted then
    left = false
  else
    left = redis.call('ZCARD', P .. ':pending:' .. e.t) > 0
  end
  if not left then
    redis.call('ZREM', P .. ':active', e.t)
  else
    any_left = true
    if e.dirty then redis.call('ZADD', P .. ':active', 'XX', e.vt, e.t) end
  end
end
if dispatched > 0 then redis.call('HSET', P .. ':meta', 'vt', vt_now) end

-- Only accounts a job was dispatched to. One merely looked at changed nothing: its refill is
-- computed again from the same stored tokens and time by the next read (the bucket's cap
-- applies either way), so writing it back would cost a command per account per round for
-- nothing (bench/schedule: its eight accounts are looked at by most rounds).
for id, a in pairs(accounts) do
  if a.dirty then
    redis.call('HSET', P .. ':acct:' .. id, 'tokens', a.tokens, 'refill_ms', now, 'in_flight',
               a.in_flight, 'day', day, 'used_today', a.used)
  end
end
-- The jobs leased to waiting workers: one fence bump for the call (as lease.lua), per worker one
-- write of its held table and one push of the leases, which wakes it.
if direct > 0 then
  local first = redis.call('INCRBY', P .. ':fence', direct) - direct
  local k = 0
  local rooms = {}
  for _, w in ipairs(waiting) do
    if #w.jobs > 0 then
      local held, leases = {}, {}
      for _, j in ipairs(w.jobs) do
        k = k + 1
        lease_job(ctx, j, w.id, (first + k) .. '/' .. w.id)
        redis.call('HSET', jkey(P, j.id), unpack(j.defer))
        j.defer = nil
        held[#held + 1] = j.id
        held[#held + 1] = held_encode(j)
        leases[#leases + 1] = leased_entry(j)
      end
      redis.call('HSET', P .. ':wjobs:' .. w.id, unpack(held))
      held_pad(P .. ':wjobs:' .. w.id)
      redis.call('RPUSH', P .. ':wgot:' .. w.id, unpack(leases))
      -- What the worker blocks on: a token, never the leases themselves (common_lease.lua).
      redis.call('RPUSH', P .. ':wnudge:' .. w.id, '1')
      if w.room > 0 then
        rooms[#rooms + 1] = w.id
        rooms[#rooms + 1] = w.room .. ':' .. w.at
      else
        gone[#gone + 1] = w.id
      end
    end
  end
  if #rooms > 0 then redis.call('HSET', P .. ':wwait', unpack(rooms)) end
end
if #gone > 0 then redis.call('HDEL', P .. ':wwait', unpack(gone)) end
flush(ctx)
if #ready > 0 then
  redis.call('RPUSH', P .. ':ready', unpack(ready))
  local wakes = {}
  for i = 1, math.min(#ready, 16) do wakes[i] = '1' end
  redis.call('LPUSH', P .. ':wake', unpack(wakes))
  redis.call('LTRIM', P .. ':wake', 0, 63)
end
if dispatched >= max_jobs then wait_ms = 0 end
if not any_left then wait_ms = 0 end
return {dispatched, expired, wait_ms}
