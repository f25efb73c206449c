-- Claims a batch id for a tenant unless another already owns it; returns the owner.
-- ARGV: P batch tenant
local P, batch, tenant = ARGV[1], ARGV[2], ARGV[3]
local key = P .. ':auth:batch:' .. batch
local owner = redis.call('GET', key)
if owner then return owner end
redis.call('SET', key, tenant)
return tenant
