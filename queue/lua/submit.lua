-- Admits one job as PENDING (or returns the job that already holds its idempotency key).
-- ARGV: P now id tenant batch idem_key idem_ttl_s score models max_attempts spec
--       start_deadline finish_deadline priority prefer_first(0|1)
local P, now, id, tenant, batch = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local idem, idem_ttl, score, models = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
if idem ~= '' then
  local ikey = P .. ':idem:' .. tenant .. ':' .. idem
  local existing = redis.call('GET', ikey)
  if existing then return {existing, 1} end
  redis.call('SET', ikey, id, 'EX', idem_ttl)
end
local j = jkey(P, id)
redis.call('HSET', j, 'id', id, 'tenant', tenant, 'batch', batch, 'idem', idem, 'score', score,
           'models', models, 'attempt', 1, 'max_attempts', ARGV[10], 'spec', ARGV[11],
           'start_deadline', ARGV[12], 'finish_deadline', ARGV[13], 'priority', ARGV[14],
           'created', now, 'pref', ARGV[15] == '1' and '1' or '')
redis.call('ZADD', P .. ':pending:' .. tenant, score, id)
redis.call('ZADD', P .. ':active', 'NX', redis.call('HGET', P .. ':meta', 'vt') or 0, tenant)
redis.call('ZADD', P .. ':jobs', now, id)
if batch ~= '' then
  redis.call('HINCRBY', P .. ':batch:' .. batch, 'total', 1)
  redis.call('ZADD', P .. ':batch:' .. batch .. ':jobs', now, id)
end
transition(P, id, now, '', 'PENDING', '', 'submitted')
return {id, 0}
