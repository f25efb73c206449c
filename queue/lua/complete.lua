-- RUNNING jobs succeeded: publishes their outputs, frees their slots, feeds each model's latency
-- estimate. Many jobs per call (a worker gathers the completions of a few milliseconds).
-- ARGV: P now n, then per job: k followed by k names and values (id token output_key
-- clip_seconds generation_ms [sidecar_key] [sha256] [output_url] [sheet_key] [last_frame]
-- [charge]: the provider's own charge in micro-dollars when its answer carried one; a name left
-- out is '').
-- The job's reservation settles at the provider's charge, else at its model's price for its
-- billed seconds (common_groups.lua, move_money). A provider's charge above the hold of a job
-- billed to a wallet settles at the hold: the tenant pays what it was quoted and held, never
-- more. The provider's own figure is kept on the job (`provider_charge`) and the capped
-- settlement is said in the job's history, so an operator sees the difference.
-- Returns per job 'OK' or the refusal ('LEASELOST', 'NOTRUNNING <state>').
local P, now, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ctx = new_ctx(P, now, ARGV[2])
local out = {}
local held = {}        -- worker -> ids it no longer holds
local lat_of = {}     -- model -> {lat, succeeded}, read once, written once
-- A model's latency estimate (and sample clamp) for this call, read with the price at `res` that
-- settling a job of it needs: one HMGET a model a call instead of two (model_price finds the
-- price in ctx; a job of another resolution reads its own).
local function model_of(model, res)
  local m = lat_of[model]
  if m then return m end
  local h = redis.call('HMGET', P .. ':model:' .. model, 'lat', 'lat_min', 'lat_max',
                       'price:' .. (res or ''), 'price')
  remember_price(ctx, model, res, h[4], h[5])
  -- Each sample is clamped to the catalogue profile's [min / 2, max * 2] (sync_config stores
  -- lat_min/lat_max), so one task stuck for an hour, or a cache hit, moves the estimate by at
  -- most a fifth of that bound.
  local lo = math.max(0, (tonumber(h[2]) or 0) / 2)
  local hi = (tonumber(h[3]) or 0) * 2
  m = {lat = tonumber(h[1] or ''), lo = lo, hi = hi, n = 0}
  lat_of[model] = m
  return m
end
local reqs = {}
local i = 4
for _ = 1, n do
  local k = tonumber(ARGV[i]); i = i + 1
  -- Sized once for the names a completion carries.
  local f = {id = false, token = false, output_key = false, sidecar_key = false, sha256 = false,
             clip_seconds = false, generation_ms = false, output_url = false, charge = false}
  for x = i, i + 2 * k - 1, 2 do f[ARGV[x]] = ARGV[x + 1] end
  i = i + 2 * k
  reqs[#reqs + 1] = f
end
-- Fenced by the worker's held table (common_held.lua, held_jobs): no read of the job's record.
local jobs = held_jobs(P, reqs, {'token', 'account', 'slot', 'worker'}, 'full')
for x, f in ipairs(reqs) do
  local j = jobs[x]
  if type(j) ~= 'table' then
    out[#out + 1] = j
  elseif j.state ~= 'RUNNING' then
    out[#out + 1] = 'NOTRUNNING ' .. tostring(j.state)  -- completed earlier in this call
  else
    local m = j.model and j.model ~= '' and model_of(j.model, j.res) or nil
    local charge = tonumber(f.charge or '')
    local provider_charge, detail = nil, 'clip stored'
    if not charge or charge < 0 then
      charge = settle_price(ctx, j)
    else
      charge = math.floor(charge)
      provider_charge = charge
      local hold = tonumber(j.hold) or 0
      if j.bill == '1' and hold > 0 and charge > hold then
        detail = 'clip stored; the provider reported ' .. dollars(charge) .. ', above the ' ..
                     dollars(hold) .. ' held: settled at the hold'
        charge = hold
      end
    end
    move_money(ctx, j, 'settle', 0, charge)
    -- The outputs as one field (`out`, job_codec.cpp reads it): each field of a listpack record
    -- costs its HSET a scan of the record (callgrind: ~20k instructions a completion for four
    -- more). Outputs holding a \31 are written one field each, as before.
    local key, sidecar, sha, secs, url = f.output_key or '', f.sidecar_key or '', f.sha256 or '',
                                         f.clip_seconds or '0', f.output_url or ''
    local stored
    if string.find(key .. sidecar .. sha .. secs .. url, '\31', 1, true) then
      stored = {'output_key', key, 'sidecar_key', sidecar, 'sha256', sha, 'clip_seconds', secs,
                'output_url', url, 'finished', ctx.now_s, 'slot', ''}
    else
      stored = {'out', key .. '\31' .. sidecar .. '\31' .. sha .. '\31' .. secs .. '\31' .. url,
                'finished', ctx.now_s, 'slot', ''}
    end
    if provider_charge then
      stored[#stored + 1] = 'provider_charge'
      stored[#stored + 1] = string.format('%d', provider_charge)
    end
    -- A compare's contact sheet (PNG) beside its grid video.
    if f.sheet_key then stored[#stored + 1] = 'sheet_key'; stored[#stored + 1] = f.sheet_key end
    -- A chained shot's last frame: the next shot starts from it (common_groups.lua, chain_next).
    if f.last_frame then stored[#stored + 1] = 'last_frame'; stored[#stored + 1] = f.last_frame end
    transition(ctx, j, 'SUCCEEDED', '', detail, stored)
    if j.worker and j.worker ~= '' then
      local h = held[j.worker]
      if not h then h = {}; held[j.worker] = h end
      h[#h + 1] = f.id
    end
    release_slot(ctx, j.slot)
    if m then
      local sample = math.max(m.lo, (tonumber(f.generation_ms) or 0) / 1000)
      if m.hi > 0 then sample = math.min(sample, math.max(m.lo, m.hi)) end
      -- Exponentially weighted (recent completions count most: a change of speed shows within
      -- ~10).
      if m.lat then m.lat = m.lat * 0.8 + sample * 0.2 else m.lat = sample end
      m.n = m.n + 1
    end
    out[#out + 1] = 'OK'
  end
end
for worker, ids in pairs(held) do redis.call('HDEL', P .. ':wjobs:' .. worker, unpack(ids)) end
for model, m in pairs(lat_of) do
  redis.call('HSET', P .. ':model:' .. model, 'lat', m.lat)
  count(ctx, P .. ':model:' .. model, 'succeeded', m.n)
end
flush(ctx)
return out
