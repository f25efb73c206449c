-- Gives a tenant a new webhook signing secret and keeps the one it replaces for `overlap_ms`:
-- deliveries meanwhile are signed with both (the webhook-signature header holds one entry per
-- secret), so a receiver that still checks the old secret keeps accepting them until it has
-- the new one. A second rotation within the overlap keeps only the newest previous secret.
-- ARGV: P tenant fresh now overlap_ms. Returns the new secret.
local P, tenant, fresh = ARGV[1], ARGV[2], ARGV[3]
local now, overlap = tonumber(ARGV[4]), tonumber(ARGV[5]) or 0
local key, prev = P .. ':whsecret', P .. ':whsecret_prev'
local old = redis.call('HGET', key, tenant)
redis.call('HSET', key, tenant, fresh)
if old and old ~= '' and overlap > 0 then
  redis.call('HSET', prev, tenant, old .. '|' .. string.format('%d', now + overlap))
else
  redis.call('HDEL', prev, tenant)
end
return fresh
