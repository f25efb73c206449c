-- Leases up to `max` DISPATCHED jobs to a worker: each gets a fresh fencing token and is held
-- under the worker's lease (register.lua, heartbeat.lua), which a call that returns any job
-- (pushed or from `ready`) extends too, with an entry in the worker's held table
-- (common_held.lua) that its later writes are fenced by.
-- Returns first what dispatch already leased to the worker (`wgot:<worker>`, common_lease.lua),
-- then jobs from `ready`; when `ready` ran dry, the worker is entered in `wwait` for as many
-- more jobs as it has room for (max 0: taken out, a draining worker).
-- ARGV: P now worker max lease_ms epoch (0: not checked; a worker with no lease gets one) room
-- room: the jobs the worker can take in all ('' or below max: max), which it waits for in
-- `wwait` less what it gets; `max` bounds only what this call leases from `ready`.
-- An error WLEASELOST when the worker's lease is gone: it must register again.
-- Returns per job its leased_entry (common_lease.lua; job_codec.cpp's DecodeLeasedEntry), then
-- '\30waiting' when the call entered the worker in `wwait` with room left: the worker then waits
-- for a push at once instead of calling again only to be entered (bench/schedule: 1.67 lease
-- calls a job, one of them such a call, when each push carries a job or two).
local P, now, worker = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local max, lease_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local epoch = ARGV[6] or '0'
local current = redis.call('HGET', P .. ':wepoch', worker)
if epoch ~= '0' and current ~= epoch then return redis.error_reply('WLEASELOST') end
if not current then
  redis.call('HSET', P .. ':wepoch', worker, redis.call('INCR', P .. ':epoch'))
end
local ctx = new_ctx(P, now, ARGV[2])
-- ARGV[8] = '1' after a lease call whose answer the worker lost (and when it drains),
-- ARGV[9..]: the jobs it holds.
-- A job Redis holds under this worker that it does not was leased by that lost answer (no one
-- runs it, and the worker's heartbeats would keep it from the reaper): it goes back to `ready`,
-- where this very call may lease it again, with a new token.
local room = math.max(tonumber(ARGV[7]) or 0, max)
if ARGV[8] == '1' then
  local holds = {}
  for i = 9, #ARGV do holds[ARGV[i]] = true end
  local held_key = P .. ':wjobs:' .. worker
  -- What dispatch pushed since is among the jobs this worker does not hold: handed back below.
  redis.call('DEL', P .. ':wgot:' .. worker, P .. ':wnudge:' .. worker)
  local back = {}
  for _, id in ipairs(redis.call('HKEYS', held_key)) do
    if not holds[id] and id ~= HELD_PAD then  -- the pad keeps the table a hash table
      local j = read_job(P, id, {'worker', 'token'})
      if j and j.state == 'RUNNING' and j.worker == worker then
        -- As handback.lua: what the held entry recorded goes into the record.
        held_take(j, held_entry(P, j))
        transition(ctx, j, 'DISPATCHED', '', 'not run by its worker; handed back',
                   {'token', '', 'worker', ''})
        back[#back + 1] = id
      end
      redis.call('HDEL', held_key, id)
    end
  end
  if #back > 0 then redis.call('LPUSH', P .. ':ready', unpack(back)) end
end
local out = redis.call('LPOP', P .. ':wgot:' .. worker, 1000) or {}
-- The nudges of those pushes (common_lease.lua): any left would wake the worker for nothing.
-- The worker takes an answer with jobs as its lease extended (worker.cpp), and its jobs run on
-- that belief: pushed jobs extend it as those from `ready` do (once a call: below, when none).
if #out > 0 then
  redis.call('DEL', P .. ':wnudge:' .. worker)
  redis.call('ZADD', P .. ':wlease', 'GT', now + lease_ms, worker)
end
local wait_key = P .. ':wwait'
local ids = nil
if max > #out then ids = redis.call('LPOP', P .. ':ready', max - #out) end
-- `ready` ran dry (or was empty): dispatch may lease straight to this worker, up to its room.
local entered = false
local function wait_for(room)
  if room > 0 then
    redis.call('HSET', wait_key, worker, room .. ':' .. ctx.now_s)
    entered = true
  else
    redis.call('HDEL', wait_key, worker)
  end
end
local function reply()
  flush(ctx)
  if entered then out[#out + 1] = '\30waiting' end
  return out
end
if not ids then
  wait_for(room - #out)
  return reply()
end
-- `ready` may hold an id twice: a job cancelled while DISPATCHED keeps its entry (cancel.lua
-- does not search the list), and RetryJob pushes it again once it is dispatched anew (or, for
-- a group, retry.lua queues its step again). Each job is leased once a call: a second copy
-- would lease it twice, with two tokens. A copy popped by a later call finds the job RUNNING
-- (or ended, or PENDING again) and is dropped, or DISPATCHED and leases it as its other copy
-- would have; one whose job waits out a retry's backoff in `delayed` (fail.lua, keep_task: a
-- job that kept its upstream task or a create intent, handback.lua's delayed hand-back, or a
-- group's step) is dropped too, as reap.lua puts the job
-- back on `ready` when that ends. Only such jobs are looked up there: a plain dispatched job
-- costs no command more.
local jobs, seen, kept_task = {}, {}, {}
for _, id in ipairs(ids) do
  if not seen[id] then
    seen[id] = true
    local j = read_record(P, id)
    if j and j.state == 'DISPATCHED' then
      jobs[#jobs + 1] = j
      if (j.upstream or '') ~= '' or (j.kind or '') ~= '' or (j.create_intent or '') ~= '' then
        kept_task[#kept_task + 1] = id
      end
    end
  end
end
if #kept_task > 0 then
  local due = redis.call('ZMSCORE', P .. ':delayed', unpack(kept_task))
  local waiting = {}
  for k, id in ipairs(kept_task) do
    if due[k] and tonumber(due[k]) > now then waiting[id] = true end
  end
  local kept = {}
  for _, j in ipairs(jobs) do
    if not waiting[j.id] then kept[#kept + 1] = j end
  end
  jobs = kept
end
-- `rdata`: what dispatch handed over per job in earlier builds of this schema (version 3);
-- entries left by a scheduler of that code are dropped with their lease.
if redis.call('EXISTS', P .. ':rdata') == 1 then redis.call('HDEL', P .. ':rdata', unpack(ids)) end
if #ids < max - #out then wait_for(room - #out - #jobs) else wait_for(0) end
if #jobs == 0 then return reply() end
if #out == 0 then redis.call('ZADD', P .. ':wlease', 'GT', now + lease_ms, worker) end
-- One fence bump for the whole call: tokens first+1 .. first+#jobs are this call's.
local first = redis.call('INCRBY', P .. ':fence', #jobs) - #jobs
local held = {}
for k, j in ipairs(jobs) do
  -- The token names its worker, so the worker's writes find its held table (common_held.lua).
  lease_job(ctx, j, worker, (first + k) .. '/' .. worker)
  held[#held + 1] = j.id
  held[#held + 1] = held_encode(j)
  out[#out + 1] = leased_entry(j)
end
redis.call('HSET', P .. ':wjobs:' .. worker, unpack(held))
held_pad(P .. ':wjobs:' .. worker)
return reply()
