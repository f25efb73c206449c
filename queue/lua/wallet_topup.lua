-- Adds money to a tenant's wallet (creating it: from then on the tenant's jobs are billed) and
-- writes the ledger entry, in one step; lets go the tenant's jobs parked for want of funds that
-- the new balance covers (below).
-- ARGV: P tenant amount_micros now max_balance_micros [request_id id_ttl_s day_field
-- month_field] (the wallet's fields of now's spending: "sd:<utc day>", "sm:<YYYY-MM>")
-- A request id seen before for this tenant (a retried top-up) credits nothing again (it only
-- writes its id's key again, so the caller's WAIT covers the credit); seen with
-- another amount, it is refused (IDCONFLICT <amount first sent>): not the same top-up.
-- Returns {balance, reserved, spent, topups, spent_today, spent_this_month} after (the wallet
-- the caller answers with: no later read can fail once the credit is made), or an error
-- NOTENANT / OVERFLOW <balance>.
local P, tenant, amount, now, max = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local request_id, id_ttl = ARGV[6] or '', tonumber(ARGV[7] or '0') or 0
local day_field, month_field = ARGV[8] or 'sd:', ARGV[9] or 'sm:'
if redis.call('SISMEMBER', P .. ':auth:tenants', tenant) == 0 then
  return redis.error_reply('NOTENANT')
end
local key = P .. ':wallet:' .. tenant
local seen = request_id ~= '' and (P .. ':topup:' .. tenant .. ':' .. request_id)
local before = seen and redis.call('GET', seen)
if before and before ~= ARGV[3] then return redis.error_reply('IDCONFLICT ' .. before) end
local h = redis.call('HMGET', key, 'balance', 'reserved', 'spent', 'topups', day_field, month_field)
local function n(i) return tonumber(h[i] or '0') or 0 end
if before then
  -- Written again, unchanged: WAIT counts only this connection's own writes, so a retry that
  -- wrote nothing would be confirmed at once (redis.wait_replicas) while the replicas may still
  -- lack the credit (the first answer's WAIT fell short, on another connection). Replication is
  -- ordered: a replica that has this write has the credit too.
  redis.call('SET', seen, before, 'KEEPTTL')
  return {n(1), n(2), n(3), n(4), n(5), n(6)}
end
local balance = n(1)
if balance + amount > max or n(4) + amount > max then
  return redis.error_reply('OVERFLOW ' .. string.format('%d', balance))
end
balance = redis.call('HINCRBY', key, 'balance', ARGV[3])
redis.call('HINCRBY', key, 'reserved', 0)
redis.call('HINCRBY', key, 'spent', 0)
local topups = redis.call('HINCRBY', key, 'topups', ARGV[3])
if seen then redis.call('SET', seen, ARGV[3], 'EX', math.max(1, id_ttl)) end
redis.call('XADD', P .. ':ledger:' .. tenant, '*', 'kind', 'topup', 'job', '', 'amount', ARGV[3],
           'charge', '0', 'hold', '0', 'balance', string.format('%d', balance), 'reserved', h[2] or '0', 'model', '',
           'at', now)
-- The tenant's parked jobs (dispatch.lua) whose need the balance now covers go back to its queue
-- with their scores, at most UNPARK_MAX of them: the rest that qualify wait in `unpark` for the
-- next dispatch rounds, UNPARK_MAX a round (common_groups.lua, unpark). Dispatch is woken.
if unpark(P, tenant, UNPARK_MAX, nil, false, balance) > 0 and
    redis.call('LLEN', P .. ':dwake') == 0 then
  redis.call('LPUSH', P .. ':dwake', '1')
end
return {balance, n(2), n(3), topups, n(5), n(6)}
