-- Leases up to `max` DISPATCHED jobs to a worker: each gets a fresh fencing token and is held
-- under the worker's lease (register.lua, heartbeat.lua), which this call extends too, with an
-- entry in the worker's held table (common_held.lua) that its later writes are fenced by.
-- ARGV: P now worker max lease_ms epoch (0: not checked; a worker with no lease gets one)
-- An error WLEASELOST when the worker's lease is gone: it must register again.
-- Returns per job a flat list of named fields (job_codec.cpp's LeasedJob fields: id token spec
-- model account attempt max_attempts upstream tenant batch finish_deadline created
-- create_intent kind parent index chain_frame).
local P, now, worker = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local max, lease_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local epoch = ARGV[6] or '0'
local current = redis.call('HGET', P .. ':wepoch', worker)
if epoch ~= '0' and current ~= epoch then return redis.error_reply('WLEASELOST') end
if not current then
  redis.call('HSET', P .. ':wepoch', worker, redis.call('INCR', P .. ':epoch'))
end
local ctx = new_ctx(P, now)
-- ARGV[7] = '1' after a lease call whose answer the worker lost, ARGV[8..]: the jobs it holds.
-- A job Redis holds under this worker that it does not was leased by that lost answer (no one
-- runs it, and the worker's heartbeats would keep it from the reaper): it goes back to `ready`,
-- where this very call may lease it again, with a new token.
if ARGV[7] == '1' then
  local holds = {}
  for i = 8, #ARGV do holds[ARGV[i]] = true end
  local held_key = P .. ':wjobs:' .. worker
  local back = {}
  for _, id in ipairs(redis.call('HKEYS', held_key)) do
    if not holds[id] then
      local j = read_job(P, id, {'worker', 'token'})
      if j and j.state == 'RUNNING' and j.worker == worker then
        -- As handback.lua: what the held entry recorded goes into the record.
        held_take(j, held_entry(P, j))
        transition(ctx, j, 'DISPATCHED', '', 'lease answer lost; handed back',
                   {'token', '', 'worker', ''})
        back[#back + 1] = id
      end
      redis.call('HDEL', held_key, id)
    end
  end
  if #back > 0 then redis.call('LPUSH', P .. ':ready', unpack(back)) end
end
local ids = redis.call('LPOP', P .. ':ready', max)
if not ids then
  flush(ctx)
  return {}
end
local OUT = {'id', 'token', 'spec', 'model', 'account', 'attempt', 'max_attempts', 'upstream',
             'tenant', 'batch', 'finish_deadline', 'created', 'create_intent', 'kind', 'parent',
             'index', 'chain_frame'}
local jobs = {}
for _, id in ipairs(ids) do
  local j = read_record(P, id)
  if j and j.state == 'DISPATCHED' then jobs[#jobs + 1] = j end
end
-- `rdata`: what dispatch handed over per job in earlier builds of this schema (version 3);
-- entries left by a scheduler of that code are dropped with their lease.
if redis.call('EXISTS', P .. ':rdata') == 1 then redis.call('HDEL', P .. ':rdata', unpack(ids)) end
if #jobs == 0 then
  flush(ctx)
  return {}
end
redis.call('ZADD', P .. ':wlease', 'GT', now + lease_ms, worker)
-- One fence bump for the whole call: tokens first+1 .. first+#jobs are this call's.
local first = redis.call('INCRBY', P .. ':fence', #jobs) - #jobs
local out = {}
local held = {}
for k, j in ipairs(jobs) do
  -- The token names its worker, so the worker's writes find its held table (common_held.lua).
  j.token = (first + k) .. '/' .. worker
  j.worker = worker
  local phase = 'SUBMITTING'
  if j.upstream and j.upstream ~= '' then phase = 'GENERATING' end
  transition(ctx, j, 'RUNNING', phase, worker,
             {'worker', worker, 'token', j.token, 'started', ctx.now_s})
  held[#held + 1] = j.id
  held[#held + 1] = held_encode(j)
  out[#out + 1] = flat(j, OUT)
end
redis.call('HSET', P .. ':wjobs:' .. worker, unpack(held))
flush(ctx)
return out
