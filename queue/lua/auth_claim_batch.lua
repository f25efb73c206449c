-- Claims a batch id for a tenant unless another already owns it; returns the owner.
-- A new claim lasts `ttl_ms` (the retention) until a job is stored under the id: submit.lua
-- makes it lasting then, and retention.lua lets it lapse a grace period after the batch's last
-- job goes (a submit racing the removal makes it lasting again). So a claim
-- whose submission stored nothing (refused by the wallet, an input image that could not be
-- stored, a batch webhook set for a batch never submitted) does not hold the id for good.
-- An id nobody owns whose batch already holds jobs (stored while authentication was off, when
-- nothing is claimed) is refused with HASJOBS: its claimant's batch watch and batch actions would
-- reach those jobs, which are not its own.
-- ARGV: P batch tenant [ttl_ms]
local P, batch, tenant, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4] or '0') or 0
local key = P .. ':auth:batch:' .. batch
local owner = redis.call('GET', key)
if owner then return owner end
local b = P .. ':batch:' .. batch
if redis.call('EXISTS', b .. ':ids', b .. ':jobs') > 0 then
  return redis.error_reply('HASJOBS')
end
if ttl > 0 then
  redis.call('SET', key, tenant, 'PX', math.floor(ttl))
else
  redis.call('SET', key, tenant)
end
return tenant
