-- Leases up to `max` DISPATCHED jobs to a worker: each gets a fresh fencing token and is held
-- under the worker's lease (register.lua, heartbeat.lua), which this call extends too, with an
-- entry in the worker's held table (common.lua) that its later writes are fenced by.
-- ARGV: P now worker max lease_ms epoch (0: not checked; a worker with no lease gets one)
-- An error WLEASELOST when the worker's lease is gone: it must register again.
-- Returns per job a flat list of named fields (job_codec.cpp's LeasedJob fields: id token spec
-- model account attempt max_attempts upstream tenant batch finish_deadline created
-- create_intent kind parent index).
local P, now, worker = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local max, lease_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local epoch = ARGV[6] or '0'
local current = redis.call('HGET', P .. ':wepoch', worker)
if epoch ~= '0' and current ~= epoch then return redis.error_reply('WLEASELOST') end
if not current then
  redis.call('HSET', P .. ':wepoch', worker, redis.call('INCR', P .. ':epoch'))
end
local ids = redis.call('LPOP', P .. ':ready', max)
if not ids then return {} end
local ctx = new_ctx(P, now)
local FIELDS = {'spec', 'account', 'attempt', 'max_attempts', 'upstream', 'tenant',
                'finish_deadline', 'created', 'create_intent', 'kind', 'index', 'slot',
                'create_log'}
local OUT = {'id', 'token', 'spec', 'model', 'account', 'attempt', 'max_attempts', 'upstream',
             'tenant', 'batch', 'finish_deadline', 'created', 'create_intent', 'kind', 'parent',
             'index'}
local jobs = {}
-- What dispatch.lua left for each job (common.lua, ready_encode), else the record.
local entries = redis.call('HMGET', P .. ':rdata', unpack(ids))
redis.call('HDEL', P .. ':rdata', unpack(ids))
for k, id in ipairs(ids) do
  local j
  if entries[k] then j = ready_decode(id, entries[k]) else j = read_job(P, id, FIELDS) end
  if j and j.state == 'DISPATCHED' then jobs[#jobs + 1] = j end
end
if #jobs == 0 then return {} end
redis.call('ZADD', P .. ':wlease', 'GT', now + lease_ms, worker)
-- One fence bump for the whole call: tokens first+1 .. first+#jobs are this call's.
local first = redis.call('INCRBY', P .. ':fence', #jobs) - #jobs
local out = {}
local held = {}
for k, j in ipairs(jobs) do
  -- The token names its worker, so the worker's writes find its held table (common.lua).
  j.token = (first + k) .. '/' .. worker
  j.worker = worker
  local phase = 'SUBMITTING'
  if j.upstream and j.upstream ~= '' then phase = 'GENERATING' end
  transition(ctx, j, 'RUNNING', phase, worker, {'worker', worker, 'token', j.token, 'started', now})
  held[#held + 1] = j.id
  held[#held + 1] = held_encode(j)
  out[#out + 1] = flat(j, OUT)
end
redis.call('HSET', P .. ':wjobs:' .. worker, unpack(held))
flush(ctx)
return out
