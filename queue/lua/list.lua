-- One page of an index (a sorted set of job ids: all jobs, one state, batch, tenant or model),
-- in index order, from just after the cursor (score, id) on. The cursor is a position, not an
-- offset: jobs that enter or leave the index between pages shift nothing, so a job that stays
-- in it is listed exactly once. Filters the index does not cover are checked per job, reading
-- at most `scan_limit` entries: a page may come back short, with a cursor to go on from.
-- ARGV: P index_key after_score after_id page_size state model tenant scan_limit [batch]
-- (after_score '' = from the start; the filters '' = any; index_key '' = every job: the
-- per-tenant indexes merged, see every_job_page; `batch` = index_key is a batch's
-- `batch:<b>:jobs`, which when absent means its `batch:<b>:ids` list, see batch_list_page)
-- Returns {next_score ('' at the end), next_id, id...}.
local P, key = ARGV[1], ARGV[2]
local after_score, after_id = tonumber(ARGV[3]), ARGV[4]
local size = tonumber(ARGV[5])
local state, model, tenant, scan_limit = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local filtered = state ~= '' or model ~= '' or tenant ~= ''

-- The rank of the first entry after (after_score, after_id); O(log N) per step, whether or not
-- the cursor's own job is still in the index.
local function start_rank(key)
  if not after_score then return 0 end
  local s = redis.call('ZSCORE', key, after_id)
  if s and tonumber(s) == after_score then return redis.call('ZRANK', key, after_id) + 1 end
  -- Entries of equal score are ordered by id: binary search among them.
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[3])
  local hi = redis.call('ZCOUNT', key, '-inf', ARGV[3])
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local at = redis.call('ZRANGE', key, mid, mid)[1]
    if at <= after_id then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- Every job, by submit time: submit.lua writes no all-jobs index (one sorted-set entry less per
-- job, issue 11); a job is in its tenant's index, and tenants that ever had one are in the set
-- `tenants`. A page merges the first page-size entries after the cursor of each tenant's index
-- (and of `jobs`: jobs without a tenant, and jobs of the layout before, listed once) in
-- (score, id) order, the order of one sorted set, so the cursor means what it always did.
local function every_job_page()
  local keys = {P .. ':jobs'}
  for _, t in ipairs(redis.call('SMEMBERS', P .. ':tenants')) do
    keys[#keys + 1] = P .. ':tenant:' .. t .. ':jobs'
  end
  local want = filtered and math.min(200, scan_limit) or size
  local entries, full = {}, false
  for _, k in ipairs(keys) do
    local from = start_rank(k)
    local r = redis.call('ZRANGE', k, from, from + want - 1, 'WITHSCORES')
    if #r >= 2 * want then full = true end
    for i = 1, #r, 2 do entries[#entries + 1] = {tonumber(r[i + 1]), r[i], r[i + 1]} end
  end
  table.sort(entries, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  local out = {'', ''}
  local found, taken, last = 0, 0, nil
  for _, e in ipairs(entries) do
    if found >= size or taken >= want then break end
    if not last or last[2] ~= e[2] then
      taken = taken + 1
      last = e
      local keep = true
      if filtered then
        local h = redis.call('HMGET', jkey(P, e[2]), 'state', 'model', 'tenant')
        keep = h[1] and (state == '' or h[1] == state) and (model == '' or h[2] == model) and
                   (tenant == '' or h[3] == tenant)
      end
      if keep then
        out[#out + 1] = e[2]
        found = found + 1
      end
    end
  end
  local left = false  -- entries after `last` in what was read
  if last then
    for k = #entries, 1, -1 do
      if entries[k][2] ~= last[2] and (entries[k][1] > last[1] or
          (entries[k][1] == last[1] and entries[k][2] > last[2])) then
        left = true
        break
      end
    end
  end
  if last and (full or left) then out[1], out[2] = last[3], last[2] end
  return out
end
if key == '' then return every_job_page() end

-- A batch's jobs (submit.lua): the list `batch:<b>:ids` in submit order, from whose head
-- retention.lua drops the ids of removed jobs, counting them in the batch's `ids_trimmed`. A
-- position is absolute (trimmed + index), so the cursor (position of the last id read, '@')
-- stays right while the head is trimmed and the tail grows. Ids whose job is gone are skipped.
local function batch_list_page(list_key, batch_key)
  local trimmed = tonumber(redis.call('HGET', batch_key, 'ids_trimmed') or '0') or 0
  local pos = trimmed
  if after_score then pos = math.max(trimmed, after_score + 1) end
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

local rank = start_rank(key)
local out = {'', ''}
local found, scanned = 0, 0
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
if not at_end and last_id then
  out[1], out[2] = last_score, last_id
end
return out
