-- Admits many jobs as PENDING in one call (a chunk of a SubmitBatch stream, or one SubmitJob),
-- or answers with the job that already holds an item's idempotency key.
-- ARGV: P now idem_ttl_s n, then per job: k followed by k names and values (the job record's
-- fields as job_codec.cpp names them: id tenant batch idem score models max_attempts spec
-- start_deadline finish_deadline priority pref).
-- Returns per job {id, duplicate(0|1)}, in order. Per job: one HSET (and one SET when it carries
-- an idempotency key); the indexes, counters and the event are written once per call.
local P, now, idem_ttl, n = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local ctx = new_ctx(P, now)
local out = {}
local pending = {}    -- tenant -> {score, id, ...}
local by_batch = {}   -- batch -> {now, id, ...}
local all = {}
local i = 5
for _ = 1, n do
  local k = tonumber(ARGV[i]); i = i + 1
  local f = {}
  local fields = {}
  for x = i, i + 2 * k - 1, 2 do
    f[ARGV[x]] = ARGV[x + 1]
    fields[#fields + 1] = ARGV[x]
    fields[#fields + 1] = ARGV[x + 1]
  end
  i = i + 2 * k
  local existing = false
  if f.idem and f.idem ~= '' then
    existing = redis.call('SET', P .. ':idem:' .. f.tenant .. ':' .. f.idem, f.id, 'NX', 'GET',
                          'EX', idem_ttl)
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    fields[#fields + 1] = 'attempt'; fields[#fields + 1] = 1
    fields[#fields + 1] = 'created'; fields[#fields + 1] = now
    transition(ctx, {id = f.id, state = '', seq = 0, models = f.models, batch = f.batch,
                     tenant = f.tenant}, 'PENDING', '', 'submitted', fields)
    local p = pending[f.tenant]
    if not p then p = {}; pending[f.tenant] = p end
    p[#p + 1] = f.score; p[#p + 1] = f.id
    all[#all + 1] = now; all[#all + 1] = f.id
    if f.batch and f.batch ~= '' then
      local b = by_batch[f.batch]
      if not b then b = {}; by_batch[f.batch] = b end
      b[#b + 1] = now; b[#b + 1] = f.id
      count(ctx, P .. ':batch:' .. f.batch, 'total', 1)
    end
    out[#out + 1] = f.id
    out[#out + 1] = 0
  end
end
if #all > 0 then
  local vt = redis.call('HGET', P .. ':meta', 'vt') or 0
  for tenant, p in pairs(pending) do
    redis.call('ZADD', P .. ':pending:' .. tenant, unpack(p))
    redis.call('ZADD', P .. ':active', 'NX', vt, tenant)
  end
  redis.call('ZADD', P .. ':jobs', unpack(all))
  for batch, b in pairs(by_batch) do redis.call('ZADD', P .. ':batch:' .. batch .. ':jobs', unpack(b)) end
  wake_dispatch(ctx)
end
flush(ctx)
return out
