-- A RUNNING job succeeded: publishes its outputs, frees its slot, feeds the model's latency
-- estimate. ARGV: P now id token output_key sidecar_key sha256 clip_seconds generation_ms
-- output_url
local P, now, id, token = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local j = jkey(P, id)
local h = redis.call('HMGET', j, 'state', 'token', 'account', 'model', 'batch', 'slot')
if h[1] ~= 'RUNNING' then return redis.error_reply('NOTRUNNING ' .. tostring(h[1])) end
if h[2] ~= token then return redis.error_reply('LEASELOST') end
transition(P, id, now, 'RUNNING', 'SUCCEEDED', '', 'clip stored',
           {'output_key', ARGV[5], 'sidecar_key', ARGV[6], 'sha256', ARGV[7],
            'clip_seconds', ARGV[8], 'output_url', ARGV[10], 'finished', now, 'slot', ''},
           h[5])
redis.call('ZREM', P .. ':leases', id)
release_slot(P, h[6], h[3])
local gen_s = tonumber(ARGV[9]) / 1000
if h[4] and h[4] ~= '' then
  local mk = P .. ':model:' .. h[4]
  local m = redis.call('HMGET', mk, 'lat', 'lat_min', 'lat_max')
  local lat = tonumber(m[1] or '')
  -- Exponentially weighted (recent completions count most: a change of speed shows within ~10),
  -- each sample clamped to the catalogue profile's [min / 2, max * 2] first, so one task stuck
  -- for an hour, or a cache hit, moves the estimate by at most a fifth of that bound.
  local lo = math.max(0, (tonumber(m[2]) or 0) / 2)
  local hi = (tonumber(m[3]) or 0) * 2
  local sample = math.max(lo, gen_s)
  if hi > 0 then sample = math.min(sample, math.max(lo, hi)) end
  if lat then lat = lat * 0.8 + sample * 0.2 else lat = sample end
  redis.call('HSET', mk, 'lat', lat)
  redis.call('HINCRBY', mk, 'succeeded', 1)
end
return 'OK'
