-- Groups, wallets and chains (issues 12 and 13), prepended after common.lua (queue/lua/PRELUDE):
-- they build on its records and transitions; common.lua declares the few it calls ahead.

-- Groups (issue 13): a storyboard or compare is a parent job (`kind`, `children` = ids in order,
-- `nchildren`) whose children are ordinary jobs carrying `parent` and `index`. The parent waits
-- PENDING outside every queue while its children run. Each child's end lands here, in the
-- script that ends it: a success is counted (`children_ok`, kept even when the group already
-- ended, so a retry knows what is left); the last success queues the parent's own step (the
-- join, the contact sheet) on `ready` for a worker to lease; a shot that FAILED (retries spent)
-- or was CANCELLED fails its storyboard, naming it. A compare's takes are alternatives, so one
-- sick provider does not sink it: a take that FAILED or was CANCELLED only ends, and once every
-- take has ended the contact sheet is queued when at least one succeeded (it shows the others as
-- failed), else the compare fails naming each take's error (compare_takes_ended).
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

-- The error message an ending transition carries in `extra` (its err_msg), or `default`.
local function ended_error(extra, default)
  local category, message = 'internal', default
  if extra then
    for i = 1, #extra - 1, 2 do
      if extra[i] == 'err_cat' and extra[i + 1] ~= '' then category = extra[i + 1] end
      if extra[i] == 'err_msg' and extra[i + 1] ~= '' then message = extra[i + 1] end
    end
  end
  return category, message
end

-- A compare whose take `child` just ended (`state`, not SUCCEEDED, or SUCCEEDED with takes that
-- did not): when every take has now ended, the contact sheet is queued if `ok` of them
-- succeeded, else the compare fails naming each take. At most one HMGET per take, stopping at
-- the first take still on its way.
local function compare_takes_ended(ctx, g, child, state, extra, ok)
  local n = tonumber(g.nchildren) or 0
  local failed = {}
  local category = nil
  for id in string.gmatch(g.children or '', '[^,]+') do
    local c_state, index, model, err_cat, err_msg
    if id == child.id then
      c_state = state
      index = redis.call('HGET', jkey(ctx.P, id), 'index') or '?'
      model = child.model or ''
      err_cat, err_msg = ended_error(extra, 'cancelled')
    else
      local h = redis.call('HMGET', jkey(ctx.P, id), 'state', 'index', 'model', 'err_cat',
                           'err_msg')
      c_state, index, model, err_cat, err_msg = h[1], h[2] or '?', h[3] or '', h[4], h[5]
      if not c_state then c_state, err_msg = 'FAILED', 'its job record is gone' end
      if c_state ~= 'SUCCEEDED' and c_state ~= 'FAILED' and c_state ~= 'CANCELLED' then
        return  -- a take still on its way ends the compare or carries it on
      end
      if (err_msg or '') == '' then err_msg = string.lower(c_state or '') end
    end
    if c_state ~= 'SUCCEEDED' then
      failed[#failed + 1] = 'takes[' .. index .. '] (job ' .. id .. (model ~= '' and ', ' ..
                                model or '') .. ') ' .. string.lower(c_state) .. ': ' .. err_msg
      category = category or (err_cat ~= '' and err_cat) or 'internal'
    end
  end
  if ok > 0 then
    group_queue_step(ctx, g, ok .. ' of ' .. n .. ' takes succeeded (' ..
                             table.concat(failed, '; ') .. '); contact sheet queued')
    return
  end
  local text = 'every take failed: ' .. table.concat(failed, '; ')
  transition(ctx, g, 'FAILED', '', text,
             {'err_cat', category or 'internal', 'err_msg', text, 'err_code', '', 'finished',
              ctx.now})
end

group_child_ended = function(ctx, child, state, extra)
  local gkey = jkey(ctx.P, child.parent)
  local g = read_job(ctx.P, child.parent, {'kind', 'nchildren', 'chain', 'children'})
  -- A parent already gone (retention) is not written again: HINCRBY would make a record of
  -- one field, in no index, that nothing ever removes.
  if not g then return end
  local ok = 0
  if state == 'SUCCEEDED' then ok = redis.call('HINCRBY', gkey, 'children_ok', 1) end
  if g.state ~= 'PENDING' then return end
  local kind = g.kind or ''
  if state == 'SUCCEEDED' then
    if ok >= (tonumber(g.nchildren) or 0) then
      group_queue_step(ctx, g, 'all ' .. ok .. ' ' .. (GROUP_CHILD[kind] or 'children') ..
                               ' succeeded; ' .. (GROUP_STEP[kind] or 'step') .. ' queued')
    elseif kind == 'compare' then
      compare_takes_ended(ctx, g, child, state, extra, ok)
    elseif g.chain == '1' then
      local index = tonumber(redis.call('HGET', jkey(ctx.P, child.id), 'index') or '')
      if index then chain_queue_next(ctx, g, index, extra) end
    end
    return
  end
  if kind == 'compare' then
    compare_takes_ended(ctx, g, child, state, extra,
                        tonumber(redis.call('HGET', gkey, 'children_ok') or '') or 0)
    return
  end
  local index = redis.call('HGET', jkey(ctx.P, child.id), 'index') or '?'
  local category, message = ended_error(extra, 'cancelled')
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
-- else its price), read once per call. remember_price keeps what a caller read itself
-- (complete.lua reads it with the model's latency).
local function remember_price(ctx, model, res, at_res, plain)
  local prices = ctx.prices
  if not prices then prices = {}; ctx.prices = prices end
  local v = tonumber(at_res or '') or tonumber(plain or '') or 0
  prices[model .. '|' .. (res or '')] = v
  return v
end
local function model_price(ctx, model, res)
  local v = ctx.prices and ctx.prices[model .. '|' .. (res or '')]
  if v == nil then
    local h = redis.call('HMGET', ctx.P .. ':model:' .. model, 'price:' .. (res or ''), 'price')
    v = remember_price(ctx, model, res, h[1], h[2])
  end
  return v
end

local function job_price(ctx, job, model)
  return model_price(ctx, model, job.res) * (tonumber(job.secs) or 0)
end

-- What a job that ran on its model is charged: that model's price, but never more than the job
-- holds. Dispatch set the hold to the price then (dispatch.lua, reprice), so a price raised in
-- the catalogue while the job ran does not reach it: the tenant's wallet (which the hold was
-- taken from) cannot go below zero, nor its batch past its budget. A price lowered meanwhile
-- is what it pays.
local function settle_price(ctx, job)
  local price = job_price(ctx, job, job.model or '')
  local hold = tonumber(job.hold) or 0
  if price > hold then price = hold end
  return price
end

-- The least a job can cost over its candidate models (0 when none has a price).
local function min_price(ctx, job)
  local least = nil
  for m in string.gmatch(job.models or '', '[^,]+') do
    local price = job_price(ctx, job, m)
    if not least or price < least then least = price end
  end
  return least or 0
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
  local wallets = ctx.wallets
  if not wallets then wallets = {}; ctx.wallets = wallets end
  local w = wallets[tenant]
  if w == nil then
    local h = redis.call('HMGET', ctx.P .. ':wallet:' .. tenant, 'balance', 'reserved', 'spent')
    if not h[1] then
      w = false
    else
      w = {balance = tonumber(h[1]) or 0, reserved = tonumber(h[2]) or 0,
           spent = tonumber(h[3]) or 0, d_balance = 0, d_reserved = 0, d_spent = 0, ledger = {}}
    end
    wallets[tenant] = w
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

-- What a job may still add to its batch's cost (its hold and what its batch committed
-- already) within the batch's budget; huge when the batch states none. This call's own moves
-- (move_money's counters, not yet flushed) count. Read once per batch per call.
local function budget_room(ctx, job)
  local money_batch = job.mbatch or job.batch
  if not money_batch or money_batch == '' then return math.huge end
  local key = ctx.P .. ':batch:' .. money_batch
  local budgets = ctx.budgets
  if not budgets then budgets = {}; ctx.budgets = budgets end
  local b = budgets[key]
  if b == nil then
    local h = redis.call('HMGET', key, 'budget', 'cost')
    b = {budget = tonumber(h[1] or '') or 0, cost = tonumber(h[2] or '') or 0}
    budgets[key] = b
  end
  if b.budget <= 0 then return math.huge end
  local moved = ctx.counters[key] and ctx.counters[key].cost or 0
  return b.budget - b.cost - moved, b.budget
end

-- Micro-dollars as a person reads them: "$1.250000", as the API's FormatMicros.
local function dollars(v)
  local sign = v < 0 and '-' or ''
  v = math.abs(v)
  return string.format('%s$%d.%06d', sign, math.floor(v / 1000000), v % 1000000)
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

-- Parked jobs (dispatch.lua): a billed job that no model it may go to can be paid for by its
-- hold plus its wallet's balance leaves its tenant's dispatch queue for `parked:<t>` (scored as
-- it was there), so that it is not read again by every dispatch round nor counted against the
-- scan depth in front of the tenant's jobs that can go. `parkneed:<t>` holds the same ids scored
-- by what the wallet's balance must hold for each (its cheapest allowed model's price past its
-- hold). It stays PENDING for every counter; its record says why it waits (`waiting` = 'funds',
-- `wait_need`). `parked_t` names the tenants that may have parked jobs. `parkdl` holds those of
-- them not started yet that have a start deadline, scored by it: reap.lua puts each back in its
-- queue once its deadline has passed, and dispatch fails it there (a parked job is in no queue
-- that dispatch checks for deadlines). Whatever takes a job out of `parked:<t>` takes it out of
-- `parkdl` too (unpark, cancel.lua, reap.lua).
-- What may make such a job affordable puts it back in its queue with its score (unpark): a
-- top-up (wallet_topup.lua) and any call that raised the wallet's balance (a refund, a reprice
-- to a cheaper model: flush_wallets below) let go the jobs whose need the new balance covers;
-- a price lowered by a config reload (sync_config.lua) lets go all of them. Dispatch parks again
-- those that still cannot go.
-- At most UNPARK_MAX jobs move a call: a tenant with more is left in the hash `unpark` (tenant ->
-- 'funds' or 'all', and meta's `unpark` set), and each dispatch round moves up to UNPARK_MAX more
-- from the tenants there (dispatch.lua) until none is left.
local UNPARK_MAX = 2000
local function unpark_later(P, tenant, mode)
  if mode == 'all' then
    redis.call('HSET', P .. ':unpark', tenant, mode)
  else
    redis.call('HSETNX', P .. ':unpark', tenant, mode)
  end
  redis.call('HSET', P .. ':meta', 'unpark', '1')
end
-- Moves up to `max` of `tenant`'s parked jobs back to its queue, the tenant active again (at
-- `vt`, else activation_vt read when a job moves): with a `balance`, those it can pay for
-- together, least need first (always the first, whose need it covers); nil: all. Each rise of a
-- balance (every refund) would otherwise let go every job whose own need it covers, to be parked
-- again by the next round: thousands of records read, for a balance that pays for a few.
-- Returns how many moved. More left that qualify: the tenant is left in `unpark`. `tidy` (the
-- dispatch round working through `unpark`): the tenant also leaves `unpark` once done, and
-- `parked_t` once it has none parked (extra commands the calls that raised a balance skip).
-- A job let go keeps `wait_need` (only `waiting` is cleared): parked again for the same need,
-- dispatch writes no new transition for it (dispatch.lua).
local function unpark(P, tenant, max, vt, tidy, balance)
  local need_key = P .. ':parkneed:' .. tenant
  local ids
  local short = false  -- the balance ran out before the jobs whose own need it covers
  if balance then
    local scored = redis.call('ZRANGEBYSCORE', need_key, '-inf', string.format('%d', balance),
                              'WITHSCORES', 'LIMIT', 0, max)
    ids = {}
    local total = 0
    for k = 1, #scored, 2 do
      total = total + (tonumber(scored[k + 1]) or 0)
      if #ids > 0 and total > balance then
        short = true
        break
      end
      ids[#ids + 1] = scored[k]
    end
  else
    ids = redis.call('ZRANGE', need_key, 0, max - 1)
  end
  local left = false
  if #ids > 0 then
    local key = P .. ':parked:' .. tenant
    local scores = redis.call('ZMSCORE', key, unpack(ids))
    local add = {}
    for i, id in ipairs(ids) do
      if scores[i] then
        add[#add + 1] = scores[i]
        add[#add + 1] = id
      end
      redis.call('HDEL', jkey(P, id), 'waiting')
    end
    if #add > 0 then redis.call('ZADD', P .. ':pending:' .. tenant, unpack(add)) end
    redis.call('ZREM', key, unpack(ids))
    redis.call('ZREM', need_key, unpack(ids))
    redis.call('ZREM', P .. ':parkdl', unpack(ids))
    redis.call('ZADD', P .. ':active', 'NX', vt or activation_vt(P), tenant)
    if #ids >= max and not short then
      left = redis.call('ZCOUNT', need_key, '-inf',
                        balance and string.format('%d', balance) or '+inf') > 0
      if left then unpark_later(P, tenant, balance and 'funds' or 'all') end
    end
  end
  if tidy and not left then
    redis.call('HDEL', P .. ':unpark', tenant)
    if redis.call('EXISTS', need_key) == 0 then redis.call('SREM', P .. ':parked_t', tenant) end
  end
  return #ids
end

flush_wallets = function(ctx)
  if not ctx.wallets then return end
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
      -- A balance that rose (a refund, a reprice to a cheaper model) may pay for a parked job.
      if w.d_balance > 0 and unpark(ctx.P, tenant, UNPARK_MAX, nil, false, w.balance) > 0 then
        wake_dispatch(ctx)
      end
      w.d_balance, w.d_reserved, w.d_spent, w.ledger = 0, 0, 0, {}
    end
  end
end

-- Chained storyboards (`chain` = 1 on the group): the shots run in order. Shot k+1 waits
-- PENDING outside the queues until shot k succeeds; then it gets shot k's last frame (the
-- `last_frame` its worker stored, passed to complete.lua) as its first frame (`chain_frame`,
-- which the worker sends as first_frame) and is queued. A shot that fails stops the chain: the
-- shots still waiting (after it, or between it and the shot on its way when it was cancelled
-- while it waited), which never ran, are cancelled and their reservations refunded; RetryJob
-- resumes from the first shot not made (retry.lua).
local function chain_ids(g)
  local ids = {}
  for id in string.gmatch(g.children or '', '[^,]+') do ids[#ids + 1] = id end
  return ids
end

chain_queue_next = function(ctx, g, index, extra)
  local next_id = chain_ids(g)[index + 2]
  if not next_id then return end
  local nxt = read_job(ctx.P, next_id, SCORE_READ)
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
  redis.call('ZADD', ctx.P .. ':pending:' .. nxt.tenant, queue_score(nxt), nxt.id)
  redis.call('ZADD', ctx.P .. ':active', 'NX', vt, nxt.tenant)
  wake_dispatch(ctx)
end

chain_stop_after = function(ctx, g, index)
  -- Every shot still waiting is cancelled, wherever it stands: a shot cancelled two ahead of the
  -- one running leaves the one in between waiting too. A PENDING shot waits (outside every
  -- queue) once a shot before it has not succeeded: only the first shot not yet made is ever
  -- queued (chain_queue_next, retry.lua), and that one, on its way, runs on.
  local ids = chain_ids(g)
  local made_so_far = true
  for k = 1, #ids do
    if k ~= index + 1 then
      local c = read_job(ctx.P, ids[k])
      if c and c.state == 'PENDING' and not made_so_far then
        redis.call('ZREM', ctx.P .. ':pending:' .. c.tenant, c.id)
        move_money(ctx, c, 'refund', 0, 0)
        transition(ctx, c, 'CANCELLED', '', 'not run: the chain stopped at shots[' .. index .. ']',
                   {'finished', ctx.now})
      end
      if not c or c.state ~= 'SUCCEEDED' then made_so_far = false end
    else
      made_so_far = false
    end
  end
end
