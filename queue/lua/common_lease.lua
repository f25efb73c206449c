-- Leasing a job to a worker (lease.lua, and dispatch.lua straight to a waiting worker), prepended
-- last (queue/lua/PRELUDE).
-- A worker whose lease call found nothing ready is entered in `wwait` (hash: worker -> how many
-- more jobs it takes, its free slots then). A dispatch round leases jobs straight to such a
-- worker: each job's DISPATCHED and RUNNING transitions go into one write of its record (both
-- in its history, both events, the counters moved once), its held entry into the worker's held
-- table, its lease (leased_entry) onto `wgot:<worker>` and a token onto `wnudge:<worker>`.
-- The worker blocks on `wnudge` (and `wake`), then its next lease call returns what is on
-- `wgot` with whatever it leases from `ready`, and enters it in `wwait` again (or takes it out:
-- no free slots, draining). Only lease.lua pops `wgot`, inside a script whose lost answer the
-- worker recovers from (ARGV[8]): a blocking pop whose client gave up (a command timeout, a
-- failover) stays blocked in Redis and would take what is pushed next with its answer dropped,
-- which is harmless for a token and would strand a leased job. A worker never gets more than
-- it asked for: dispatch counts `wwait` down, and lease.lua subtracts what it returns. Reap and
-- register drop a worker's `wwait` entry, `wgot` and `wnudge` with its held table; a lost lease
-- answer drops them too, the pushed jobs handed back.

-- A `wwait` entry is "<room>:<ms it was written>". A worker with room calls lease.lua at least
-- once a second (its wait on `wnudge` times out after one), each call writing its entry again;
-- dispatch passes by an entry older than WAIT_FRESH_MS: a worker that hung (stopped, its loop
-- stuck) while its lease is still live would otherwise take up to `room` jobs with it until
-- the reaper hands them on.
local WAIT_FRESH_MS = 2000

-- One job leased to `worker` under `token`: RUNNING, in phase SUBMITTING, or GENERATING when an
-- earlier attempt's upstream task is known (the worker resumes it).
local function lease_job(ctx, j, worker, token)
  j.token, j.worker = token, worker
  local phase = 'SUBMITTING'
  if j.upstream and j.upstream ~= '' then phase = 'GENERATING' end
  transition(ctx, j, 'RUNNING', phase, worker,
             {'worker', worker, 'token', token, 'started', ctx.now_s})
end

-- What a worker gets for a leased job, as one string (a list element needs no reply table):
-- "L1" then the named fields, each "\31<name>\31<value>", every name always present in this
-- order, `spec` last (its value, binary, runs to the end). job_codec.cpp's DecodeLeasedEntry
-- checks the names and their order and refuses an entry that does not match.
-- One concatenation (a table and table.concat cost twice as much: ~21,000 instructions a job
-- against ~11,000, callgrind inside Redis).
-- The values are ids, numbers and provider task ids, but a batch id comes from the client and a
-- task id from the provider: a value holding \31 would shift the fields after it, so such a
-- job's entry is "J1" .. a JSON array of the same values in the same order .. "\31" .. spec
-- (cjson writes no raw \31).
local LEASED_NAMES = {'id', 'token', 'model', 'account', 'attempt', 'max_attempts', 'upstream',
                      'tenant', 'batch', 'finish_deadline', 'created', 'create_intent', 'kind',
                      'parent', 'index', 'chain_frame'}
local function leased_entry(j)
  local id, token, model, account = j.id, j.token, j.model or '', j.account or ''
  local attempt, max_attempts, upstream = j.attempt or '', j.max_attempts or '', j.upstream or ''
  local tenant, batch, deadline = j.tenant or '', j.batch or '', j.finish_deadline or ''
  local created, intent, kind, parent = j.created or '', j.create_intent or '', j.kind or '',
                                        j.parent or ''
  local index, frame = j.index or '', j.chain_frame or ''
  if string.find(id .. token .. model .. account .. upstream .. tenant .. batch .. intent ..
                     parent .. frame, '\31', 1, true) then
    local v = {}
    for k, n in ipairs(LEASED_NAMES) do
      local x = j[n]
      if x == nil or x == false then x = '' end
      v[k] = tostring(x)
    end
    return 'J1' .. cjson.encode(v) .. '\31' .. (j.spec or '')
  end
  return 'L1\31id\31' .. id .. '\31token\31' .. token .. '\31model\31' .. model ..
             '\31account\31' .. account .. '\31attempt\31' .. attempt .. '\31max_attempts\31' ..
             max_attempts .. '\31upstream\31' .. upstream .. '\31tenant\31' .. tenant ..
             '\31batch\31' .. batch .. '\31finish_deadline\31' .. deadline .. '\31created\31' ..
             created .. '\31create_intent\31' .. intent .. '\31kind\31' .. kind ..
             '\31parent\31' .. parent .. '\31index\31' .. index .. '\31chain_frame\31' ..
             frame .. '\31spec\31' .. (j.spec or '')
end

-- A worker that lost its lease (reap.lua) or started over under the same id (register.lua):
-- every job it still held RUNNING goes back to DISPATCHED with what the worker recorded merged
-- into its record (its held entry, common_held.lua: create intent, upstream id, history), so the
-- next lease resumes the upstream task instead of creating another; the cleared token fences the
-- old worker out. Its held table goes, with the leases and cancels pushed to it (those leases are
-- of jobs handed back here) and its `wwait` entry. The ids handed back are added to `back`.
local function hand_back_held(ctx, worker, detail, back)
  local P = ctx.P
  local held = P .. ':wjobs:' .. worker
  local entries = redis.call('HGETALL', held)
  for x = 1, #entries, 2 do
    local id = entries[x]
    local j = read_job(P, id, {'worker', 'token'})
    if j and j.state == 'RUNNING' and j.worker == worker then
      local h = held_decode(id, entries[x + 1], worker)
      if h.token ~= j.token then h = nil end
      held_take(j, h)
      transition(ctx, j, 'DISPATCHED', '', detail, {'token', '', 'worker', ''})
      back[#back + 1] = id
    end
  end
  redis.call('DEL', held, P .. ':wcancel:' .. worker, P .. ':wcnudge:' .. worker,
             P .. ':wgot:' .. worker, P .. ':wnudge:' .. worker)
  redis.call('HDEL', P .. ':wwait', worker)
end

-- Jobs handed back go to the front of `ready`, and a worker waiting for work is woken.
local function ready_again(P, ids)
  if #ids == 0 then return end
  redis.call('LPUSH', P .. ':ready', unpack(ids))
  redis.call('LPUSH', P .. ':wake', '1')
  redis.call('LTRIM', P .. ':wake', 0, 63)
end
