-- A RUNNING job's attempt failed. Either it goes back to wait for a retry (PENDING after
-- `retry_at`), or it ends FAILED. Every attempt's error is kept. The account slot is freed
-- either way, and a rate-limited account cools down fleet-wide.
-- ARGV: P now id token category message code retry(0|1) retry_at count_attempt(0|1)
--       cooldown_ms
local P, now, id, token = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local category, message, code = ARGV[5], ARGV[6], ARGV[7]
local retry, retry_at, count_attempt = ARGV[8] == '1', tonumber(ARGV[9]), ARGV[10] == '1'
local cooldown_ms = tonumber(ARGV[11])
local j = jkey(P, id)
local h = redis.call('HMGET', j, 'state', 'token', 'account', 'attempt', 'max_attempts', 'model',
                        'slot', 'create_log')
if h[1] ~= 'RUNNING' then return redis.error_reply('NOTRUNNING ' .. tostring(h[1])) end
if h[2] ~= token then return redis.error_reply('LEASELOST') end
local attempt, max_attempts = tonumber(h[4]) or 1, tonumber(h[5]) or 1
redis.call('RPUSH', j .. ':errors', cjson.encode({attempt = attempt, category = category,
           message = message, code = code, at = now, model = h[6], account = h[3]}))
redis.call('ZREM', P .. ':leases', id)
release_slot(P, h[7], h[3])
settle_create(P, h[3], h[8], now)
if cooldown_ms > 0 and h[3] and h[3] ~= '' then
  local a = P .. ':acct:' .. h[3]
  local until_ms = now + cooldown_ms
  local cur = tonumber(redis.call('HGET', a, 'cooldown_until') or '0') or 0
  if until_ms > cur then redis.call('HSET', a, 'cooldown_until', until_ms) end
  redis.call('HINCRBY', a, 'rate_limited', 1)
  if category == 'rate_limited' then
    -- The provider's real limit is lower than what we used: halve the effective rate (from
    -- where it stands now, recovery included) until the account recovers (see dispatch.lua).
    local r = redis.call('HMGET', a, 'rpm', 'learned_rpm', 'learned_at')
    local rpm = tonumber(r[1]) or 0
    local eff = effective_rpm(rpm, tonumber(r[2]), tonumber(r[3]), now)
    redis.call('HSET', a, 'learned_rpm', math.max(1, eff / 2), 'learned_at', now)
  end
end
if h[6] and h[6] ~= '' and not retry then redis.call('HINCRBY', P .. ':model:' .. h[6], 'failed', 1) end
if count_attempt then attempt = attempt + 1 end
if retry and attempt <= max_attempts then
  transition(P, id, now, 'RUNNING', 'PENDING', '', category .. ': ' .. message,
             {'attempt', attempt, 'model', '', 'account', '', 'upstream', '', 'token', '',
              'worker', '', 'slot', '', 'create_log', ''})
  redis.call('ZADD', P .. ':delayed', retry_at, id)
  return 'RETRY'
end
transition(P, id, now, 'RUNNING', 'FAILED', '', category .. ': ' .. message,
           {'err_cat', category, 'err_msg', message, 'err_code', code, 'finished', now, 'slot', '',
            'create_log', ''})
return 'FAILED'
