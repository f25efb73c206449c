-- One page of an index (a sorted set of job ids: all jobs, one state, batch, tenant or model),
-- in index order, from just after the cursor (score, id) on. The cursor is a position, not an
-- offset: jobs that enter or leave the index between pages shift nothing, so a job that stays
-- in it is listed exactly once. Filters the index does not cover are checked per job, reading
-- at most `scan_limit` entries: a page may come back short, with a cursor to go on from.
-- ARGV: P index_key after_score after_id page_size state model tenant scan_limit
-- (after_score '' = from the start; the filters '' = any)
-- Returns {next_score ('' at the end), next_id, id...}.
local P, key = ARGV[1], ARGV[2]
local after_score, after_id = tonumber(ARGV[3]), ARGV[4]
local size = tonumber(ARGV[5])
local state, model, tenant, scan_limit = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local filtered = state ~= '' or model ~= '' or tenant ~= ''

-- The rank of the first entry after (after_score, after_id); O(log N) per step, whether or not
-- the cursor's own job is still in the index.
local function start_rank()
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

local rank = start_rank()
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
