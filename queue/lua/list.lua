-- Pages through an index (all jobs, or one batch's) oldest first, filtering server-side.
-- ARGV: P index offset page_size state model tenant scan_limit
-- Returns {next_offset (-1 at the end), id...}.
local P, index = ARGV[1], ARGV[2]
local offset, size = tonumber(ARGV[3]), tonumber(ARGV[4])
local state, model, tenant, scan_limit = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local key = P .. ':jobs'
if index ~= '' then key = P .. ':batch:' .. index .. ':jobs' end
local out = {0}
local scanned = 0
local pos = offset
while #out - 1 < size and scanned < scan_limit do
  local ids = redis.call('ZRANGE', key, pos, pos + 199)
  if #ids == 0 then out[1] = -1; return out end
  for _, id in ipairs(ids) do
    pos = pos + 1
    scanned = scanned + 1
    local h = redis.call('HMGET', jkey(P, id), 'state', 'model', 'tenant')
    if h[1] and (state == '' or h[1] == state) and (model == '' or h[2] == model) and
        (tenant == '' or h[3] == tenant) then
      out[#out + 1] = id
      if #out - 1 >= size then break end
    end
  end
end
if #out - 1 < size and redis.call('ZCARD', key) <= pos then out[1] = -1 else out[1] = pos end
return out
