-- One page of an index (a sorted set of job ids: one state, batch or model; a tenant's calls;
-- every job), in index order, from just after the cursor on. The cursor is a position, not an
-- offset: jobs that enter or leave the index between pages shift nothing, so a job that stays
-- in it is listed exactly once. Filters the index does not cover are checked per job, reading
-- at most `scan_limit` entries: a page may come back short, with a cursor to go on from.
-- ARGV: P index_key after_score after_id page_size state model tenant scan_limit [mode [name]]
-- (after_score '' = from the start; the filters '' = any; index_key '' = every job: the
-- tenants' indexes merged, see merged_page; mode `batch` = index_key is a batch's
-- `batch:<b>:jobs`, which when absent means its `batch:<b>:ids` list, see batch_list_page;
-- mode `tenant` = index_key is tenant <name>'s `tenant:<name>:jobs`, see merged_page; mode
-- `pending` = index_key is `state:PENDING`, see pending_page)
-- Returns {next_score ('' at the end), next_id, id...}.
local P, key = ARGV[1], ARGV[2]
local after_score, after_id = tonumber(ARGV[3]), ARGV[4]
local size = tonumber(ARGV[5])
local state, model, tenant, scan_limit = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local filtered = state ~= '' or model ~= '' or tenant ~= ''

-- The rank of the first entry after (after_score, name); O(log N) per step, whether or not
-- the cursor's own entry is still in the index.
-- (score, score_text): another position than the cursor's (the PENDING walk's, below).
local function start_rank(key, name, score, score_text)
  if not score then score, score_text = after_score, ARGV[3] end
  if not score then return 0 end
  local s = redis.call('ZSCORE', key, name)
  if s and tonumber(s) == score then return redis.call('ZRANK', key, name) + 1 end
  -- Entries of equal score are ordered by member: binary search among them.
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. score_text)
  local hi = redis.call('ZCOUNT', key, '-inf', score_text)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local at = redis.call('ZRANGE', key, mid, mid)[1]
    if at <= name then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- Merged pages (every job; one tenant's jobs) order their entries by (score, name, position):
-- a sorted-set entry is (its score, its id, 0), the k-th job of a tenant's submit call is (the
-- call's time, the call's number, k). The cursor's id is "<name>/<position>" for a call's job,
-- the plain id for a sorted-set entry.
local after_name, after_pos = after_id, 0
do
  local name, pos = string.match(after_id or '', '^(.*)/(%d+)$')
  if name then after_name, after_pos = name, tonumber(pos) end
end
local function before(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  if a[2] ~= b[2] then return a[2] < b[2] end
  return a[3] < b[3]
end

-- A tenant's jobs (submit.lua): one entry per submit call in `tenant:<t>:calls` (the call's
-- number scored by its time), its ids in submit order in the hash `tenant:<t>:callids`.
-- Returns the first `want` jobs after the cursor as entries {score, call, position, id,
-- score as Redis wrote it}, and whether it stopped before the end. Ids whose job retention
-- removed stay in their call until its last job goes: the page skips them.
local function call_entries(t, want)
  local zkey, hkey = P .. ':tenant:' .. t .. ':calls', P .. ':tenant:' .. t .. ':callids'
  local rank, pos = 0, 1
  if after_score then
    local s = redis.call('ZSCORE', zkey, after_name)
    if s and tonumber(s) == after_score then
      rank, pos = redis.call('ZRANK', zkey, after_name), after_pos + 1
    else
      rank = start_rank(zkey, after_name)
    end
  end
  local entries, n = {}, 0
  while n < want do
    local r = redis.call('ZRANGE', zkey, rank, rank + 3, 'WITHSCORES')
    if #r == 0 then break end
    local names = {}
    for i = 1, #r, 2 do names[#names + 1] = r[i] end
    local lists = redis.call('HMGET', hkey, unpack(names))
    for k = 1, #names do
      local p = 0
      for id in string.gmatch(lists[k] or '', '[^,]+') do
        p = p + 1
        if p >= pos then
          if n >= want then break end
          n = n + 1
          entries[n] = {tonumber(r[2 * k]), names[k], p, id, r[2 * k]}
        end
      end
      if n >= want then break end
      rank, pos = rank + 1, 1
    end
    if #r < 8 then break end
  end
  return entries, n >= want
end

-- Every job, by submit time: submit.lua writes no all-jobs index (issue 11); a job is in its
-- tenant's calls, and tenants that ever had one are in the set `tenants`. A page merges the
-- first page-size entries after the cursor of each source: the sorted sets `zsets` (`jobs`:
-- jobs without a tenant and jobs of the layout before, which also left each job in its tenant's
-- sorted set `tenant:<t>:jobs`; a job in two of them is listed once) and the calls of
-- `tenants`, in (score, name, position) order, so the cursor means what it always did.
local function merged_page(zsets, tenants)
  local want = filtered and math.min(200, scan_limit) or size
  local entries, full = {}, false
  for _, k in ipairs(zsets) do
    local from = start_rank(k, after_name)
    local r = redis.call('ZRANGE', k, from, from + want - 1, 'WITHSCORES')
    if #r >= 2 * want then full = true end
    for i = 1, #r, 2 do entries[#entries + 1] = {tonumber(r[i + 1]), r[i], 0, r[i], r[i + 1]} end
  end
  for _, t in ipairs(tenants) do
    local e, more = call_entries(t, want)
    if more then full = true end
    for _, x in ipairs(e) do entries[#entries + 1] = x end
  end
  table.sort(entries, before)
  local out = {'', ''}
  local found, taken, last, at = 0, 0, nil, 0
  for k, e in ipairs(entries) do
    if found >= size or taken >= want then break end
    at = k
    if not last or last[4] ~= e[4] then
      taken = taken + 1
      last = e
      local keep = true
      if filtered or e[3] > 0 then
        local h = redis.call('HMGET', jkey(P, e[4]), 'state', 'model', 'tenant')
        keep = h[1] and (state == '' or h[1] == state) and (model == '' or h[2] == model) and
                   (tenant == '' or h[3] == tenant)
      end
      if keep then
        out[#out + 1] = e[4]
        found = found + 1
      end
    end
  end
  local left = false  -- entries after `last` in what was read
  for k = at + 1, #entries do
    if entries[k][4] ~= last[4] then
      left = true
      break
    end
  end
  if last and (full or left) then
    out[1] = last[5]
    out[2] = last[3] > 0 and (last[2] .. '/' .. last[3]) or last[2]
  end
  return out
end
if key == '' then
  local zsets, tenants = {P .. ':jobs'}, redis.call('SMEMBERS', P .. ':tenants')
  for _, t in ipairs(tenants) do zsets[#zsets + 1] = P .. ':tenant:' .. t .. ':jobs' end
  return merged_page(zsets, tenants)
end
if ARGV[10] == 'tenant' then return merged_page({key}, {ARGV[11]}) end

-- A batch's jobs (submit.lua): the list `batch:<b>:ids` in submit order, from whose head
-- retention.lua drops the ids of removed jobs, counting them in the batch's `ids_trimmed`. A
-- position is absolute (trimmed + index), so the cursor (position of the last id read, '@')
-- stays right while the head is trimmed and the tail grows. Ids whose job is gone are skipped.
local function batch_list_page(list_key, batch_key)
  local trimmed = tonumber(redis.call('HGET', batch_key, 'ids_trimmed') or '0') or 0
  local pos = trimmed
  -- Whole: a forged cursor's fraction must not reach LRANGE as a script error.
  if after_score then pos = math.max(trimmed, math.floor(after_score) + 1) end
  local len = redis.call('LLEN', list_key)
  local out = {'', ''}
  local found, scanned, last = 0, 0, nil
  while found < size and scanned < scan_limit and pos - trimmed < len do
    local from = pos - trimmed
    local r = redis.call('LRANGE', list_key, from, from + math.min(200, scan_limit - scanned) - 1)
    if #r == 0 then break end
    for _, id in ipairs(r) do
      last = pos
      pos = pos + 1
      scanned = scanned + 1
      local h = redis.call('HMGET', jkey(P, id), 'state', 'model', 'tenant')
      if h[1] and (state == '' or h[1] == state) and (model == '' or h[2] == model) and
          (tenant == '' or h[3] == tenant) then
        out[#out + 1] = id
        found = found + 1
      end
      if found >= size or scanned >= scan_limit then break end
    end
  end
  if last and pos - trimmed < len then out[1], out[2] = string.format('%d', last), '@' end
  return out
end
if ARGV[10] == 'batch' and redis.call('EXISTS', key) == 0 then
  return batch_list_page(string.sub(key, 1, -6) .. ':ids', string.sub(key, 1, -6))
end

-- One sorted-set index (scores: times) from `rank` on, adding to `out` (`found` of `size`
-- listed, `scanned` of `scan_limit` read so far). Returns found, scanned, whether it reached
-- the index's end, and the last entry read.
local function index_page(key, rank, out, found, scanned)
  local last_score, last_id = nil, nil
  local at_end = false
  while found < size and scanned < scan_limit do
    local want = size - found
    if filtered then want = math.min(200, scan_limit - scanned) end
    local r = redis.call('ZRANGE', key, rank, rank + want - 1, 'WITHSCORES')
    if #r == 0 then at_end = true; break end
    for i = 1, #r, 2 do
      local id = r[i]
      rank = rank + 1
      scanned = scanned + 1
      last_id, last_score = id, r[i + 1]
      local keep = true
      if filtered then
        local h = redis.call('HMGET', jkey(P, id), 'state', 'model', 'tenant')
        keep = h[1] and (state == '' or h[1] == state) and (model == '' or h[2] == model) and
                   (tenant == '' or h[3] == tenant)
      end
      if keep then
        out[#out + 1] = id
        found = found + 1
        if found >= size then break end
      end
    end
    if found >= size then break end
    if #r < 2 * want then at_end = true; break end
  end
  if not at_end and redis.call('ZCARD', key) <= rank then at_end = true end
  return found, scanned, at_end, last_score, last_id
end

-- PENDING (mode `pending`, key = `state:PENDING`): submit.lua indexes a plain job in no state
-- set (issue 11: a sorted-set entry per job, ~130 bytes and ~7,000 instructions); until its
-- first transition (its record has no `seq` then) it is in its tenant's dispatch queue
-- `pending:<t>`, which it leaves only by leaving PENDING. Every other PENDING job (back from a
-- retry or a backoff, a group's parent, a chain shot that waits, one of the layout before) is
-- in `state:PENDING`. A page lists the dispatch queues first, merged in dispatch-score order
-- (score, id), skipping jobs with a `seq` (those are in `state:PENDING`), then `state:PENDING`
-- in time order. (A queued job that dispatch parks for want of funds, `parked:<t>`, gets a seq
-- and its `state:PENDING` entry then: a listing paging through the queues meanwhile may list it
-- twice, never miss it.) No job moves between the two while it stays PENDING, and neither part
-- reorders, so the cursor keeps its meaning: its id is 'q:<id>' in the queues' part.
local function pending_page()
  local out = {'', ''}
  local found, scanned = 0, 0
  local qid = after_score and string.match(after_id, '^q:(.*)$')
  if not after_score or qid then
    local queues = {}
    if tenant ~= '' then
      queues[1] = P .. ':pending:' .. tenant
    else
      queues[1] = P .. ':pending:'  -- jobs without a tenant
      for _, t in ipairs(redis.call('SMEMBERS', P .. ':tenants')) do
        queues[#queues + 1] = P .. ':pending:' .. t
      end
    end
    local want = math.min(200, scan_limit)
    local at, at_text, at_id = after_score, ARGV[3], qid
    local done = false
    while not done and found < size and scanned < scan_limit do
      -- The first `want` entries after the position of every queue: in the merged order the
      -- first `want` of them are exact (a queue's next entry comes after its last one read).
      local entries, full = {}, false
      for _, q in ipairs(queues) do
        local from = at and start_rank(q, at_id, at, at_text) or 0
        local r = redis.call('ZRANGE', q, from, from + want - 1, 'WITHSCORES')
        if #r >= 2 * want then full = true end
        for i = 1, #r, 2 do entries[#entries + 1] = {tonumber(r[i + 1]), r[i], r[i + 1]} end
      end
      table.sort(entries, function(a, b)
        if a[1] ~= b[1] then return a[1] < b[1] end
        return a[2] < b[2]
      end)
      local taken = 0
      for _, e in ipairs(entries) do
        if found >= size or scanned >= scan_limit or taken >= want then break end
        taken = taken + 1
        scanned = scanned + 1
        at, at_id, at_text = e[1], e[2], e[3]
        local h = redis.call('HMGET', jkey(P, e[2]), 'state', 'seq', 'model', 'tenant')
        if h[1] == 'PENDING' and not h[2] and (model == '' or h[3] == model) and
            (tenant == '' or h[4] == tenant) then
          out[#out + 1] = e[2]
          found = found + 1
        end
      end
      done = taken == #entries and not full
    end
    if not done then
      out[1], out[2] = at_text, 'q:' .. at_id
      return out
    end
    after_score, after_id = nil, nil  -- the queues are done: `state:PENDING` from its start
  end
  local _, _, at_end, last_score, last_id =
      index_page(key, start_rank(key, after_id), out, found, scanned)
  if not at_end then
    -- A page the queues filled to the last entry: `state:PENDING` from its start next.
    out[1], out[2] = last_score or '0', last_id or '.'
  end
  return out
end
if ARGV[10] == 'pending' then return pending_page() end

local out = {'', ''}
local _, _, at_end, last_score, last_id = index_page(key, start_rank(key, after_id), out, 0, 0)
if not at_end and last_id then
  out[1], out[2] = last_score, last_id
end
return out
