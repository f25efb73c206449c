-- Retention: finished jobs whose state was reached at or before `cutoff` leave Redis, at most
-- `max` per call, with everything that names them: the job hash (its history and errors are
-- inside), the all-jobs, state, tenant, batch and model index entries, the claim on its upstream
-- task (phase.lua's owner:<account>:<upstream>, while it still names this job: it expires after
-- 48 h on its own, but under a shorter retention it would outlive the job and Redis would hold
-- 48 h of them whatever the retention), and the batch record when its last job goes.
-- Idempotency keys expire on their own clock; the clip and its sidecar in the store are not
-- Redis's to remove.
-- ARGV: P now cutoff max
-- Returns {jobs_removed, batches_removed, more(0|1)}.
local P, cutoff, max = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
-- Events older than the retention describe jobs that are gone or about to go: the stream is
-- bounded by time as well as by its length cap (flush in common.lua).
redis.call('XTRIM', P .. ':events', 'MINID', '~', string.format('%d', cutoff) .. '-0')
local ids, state_of = {}, {}
local more = 0
for _, state in ipairs({'SUCCEEDED', 'FAILED', 'CANCELLED'}) do
  if #ids < max then
    local due = redis.call('ZRANGEBYSCORE', P .. ':state:' .. state, '-inf', cutoff, 'LIMIT', 0,
                           max - #ids)
    for _, id in ipairs(due) do
      ids[#ids + 1] = id
      state_of[id] = state
    end
  end
end
if #ids == 0 then return {0, 0, 0} end
if #ids >= max then more = 1 end
local groups, order = {}, {}
local function put(key, id)
  local g = groups[key]
  if not g then g = {}; groups[key] = g; order[#order + 1] = key end
  g[#g + 1] = id
end
local batches, batch_order = {}, {}
local keys = {}
for _, id in ipairs(ids) do
  local h = redis.call('HMGET', jkey(P, id), 'tenant', 'batch', 'model', 'worker', 'account',
                       'upstream')
  keys[#keys + 1] = jkey(P, id)
  if h[5] and h[5] ~= '' and h[6] and h[6] ~= '' then
    local owner = P .. ':owner:' .. h[5] .. ':' .. h[6]
    if redis.call('GET', owner) == id then keys[#keys + 1] = owner end
  end
  put(P .. ':jobs', id)
  put(P .. ':state:' .. state_of[id], id)
  if h[1] and h[1] ~= '' then put(P .. ':tenant:' .. h[1] .. ':jobs', id) end
  if h[3] and h[3] ~= '' then put(P .. ':model:' .. h[3] .. ':jobs', id) end
  -- A cancel pushed to a worker that never took it (it died): nothing is left to cancel.
  if state_of[id] == 'CANCELLED' and h[4] and h[4] ~= '' then
    redis.call('LREM', P .. ':wcancel:' .. h[4], 0, id)
  end
  if h[2] and h[2] ~= '' then
    put(P .. ':batch:' .. h[2] .. ':jobs', id)
    if not batches[h[2]] then batches[h[2]] = true; batch_order[#batch_order + 1] = h[2] end
  end
end
redis.call('DEL', unpack(keys))
for _, key in ipairs(order) do redis.call('ZREM', key, unpack(groups[key])) end
local gone = 0
for _, batch in ipairs(batch_order) do
  local b = P .. ':batch:' .. batch
  if redis.call('ZCARD', b .. ':jobs') == 0 then
    redis.call('DEL', b, b .. ':jobs')
    gone = gone + 1
  end
end
return {#ids, gone, more}
