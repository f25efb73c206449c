-- RUNNING jobs succeeded: publishes their outputs, frees their slots, feeds each model's latency
-- estimate. Many jobs per call (a worker gathers the completions of a few milliseconds).
-- ARGV: P now n, then per job: k followed by k names and values (id token output_key
-- sidecar_key sha256 clip_seconds generation_ms output_url).
-- Returns per job 'OK' or the refusal ('LEASELOST', 'NOTRUNNING <state>').
local P, now, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ctx = new_ctx(P, now)
local out = {}
local held = {}        -- worker -> ids it no longer holds
local lat_of = {}     -- model -> {lat, succeeded}, read once, written once
local i = 4
for _ = 1, n do
  local k = tonumber(ARGV[i]); i = i + 1
  local f = {}
  for x = i, i + 2 * k - 1, 2 do f[ARGV[x]] = ARGV[x + 1] end
  i = i + 2 * k
  local j = read_job(P, f.id, {'token', 'account', 'slot', 'worker'})
  if not j or j.state ~= 'RUNNING' then
    out[#out + 1] = 'NOTRUNNING ' .. tostring(j and j.state)
  elseif j.token ~= f.token then
    out[#out + 1] = 'LEASELOST'
  else
    transition(ctx, j, 'SUCCEEDED', '', 'clip stored',
               {'output_key', f.output_key or '', 'sidecar_key', f.sidecar_key or '', 'sha256',
                f.sha256 or '', 'clip_seconds', f.clip_seconds or '0', 'output_url',
                f.output_url or '', 'finished', now, 'slot', ''})
    if j.worker and j.worker ~= '' then
      local h = held[j.worker]
      if not h then h = {}; held[j.worker] = h end
      h[#h + 1] = f.id
    end
    release_slot(ctx, j.slot)
    if j.model and j.model ~= '' then
      local m = lat_of[j.model]
      if not m then
        m = {lat = tonumber(redis.call('HGET', P .. ':model:' .. j.model, 'lat') or ''), n = 0}
        lat_of[j.model] = m
      end
      local gen_s = (tonumber(f.generation_ms) or 0) / 1000
      -- Exponentially weighted: recent completions count most, one outlier moves it a fifth.
      if m.lat then m.lat = m.lat * 0.8 + gen_s * 0.2 else m.lat = gen_s end
      m.n = m.n + 1
    end
    out[#out + 1] = 'OK'
  end
end
for worker, ids in pairs(held) do redis.call('SREM', P .. ':wjobs:' .. worker, unpack(ids)) end
for model, m in pairs(lat_of) do
  redis.call('HSET', P .. ':model:' .. model, 'lat', m.lat)
  count(ctx, P .. ':model:' .. model, 'succeeded', m.n)
end
flush(ctx)
return out
