-- Leases up to `max` DISPATCHED jobs to a worker: each gets a fresh fencing token and a lease
-- that expires unless heartbeats renew it.
-- ARGV: P now worker max lease_ms
-- Returns a flat list: per job {id, token, spec, model, account, attempt, max_attempts,
-- upstream, tenant, batch, finish_deadline, created, create_intent}.
local P, now, worker = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local max, lease_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local ids = redis.call('LPOP', P .. ':ready', max)
if not ids then return {} end
local out = {}
for _, id in ipairs(ids) do
  local j = jkey(P, id)
  local h = redis.call('HMGET', j, 'state', 'spec', 'model', 'account', 'attempt', 'max_attempts',
                       'upstream', 'tenant', 'batch', 'finish_deadline', 'created',
                       'create_intent')
  if h[1] == 'DISPATCHED' then
    local token = redis.call('INCR', P .. ':fence')
    local phase = 'SUBMITTING'
    if h[7] and h[7] ~= '' then phase = 'GENERATING' end
    transition(P, id, now, 'DISPATCHED', 'RUNNING', phase, worker,
               {'worker', worker, 'token', token, 'started', now}, h[9])
    redis.call('ZADD', P .. ':leases', now + lease_ms, id)
    local row = {id, token, h[2], h[3], h[4], h[5], h[6], h[7] or '', h[8], h[9] or '',
                 h[10] or '0', h[11] or '0', h[12] or ''}
    for i = 1, #row do out[#out + 1] = row[i] end
  end
end
return out
