-- Reads jobs whole: the record holds its transition history (h:<seq>) and every attempt's
-- error (e:<seq>). A RUNNING job's changes since its lease (phase, upstream id, history) are in
-- its worker's held entry, not yet in the record (common_held.lua, HELD): when the
-- entry's token is the record's, they are appended after the record's fields, which they
-- override (JobRecord::Decode keeps the last value of a field).
-- ARGV: P id1 [id2 ...]. Returns per id its fields as a flat list (empty when the job does not
-- exist).
local P = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local r = redis.call('HGETALL', jkey(P, id))
  local state, worker, token
  for k = 1, #r - 1, 2 do
    local n = r[k]
    if n == 'state' then state = r[k + 1]
    elseif n == 'worker' then worker = r[k + 1]
    elseif n == 'token' then token = r[k + 1] end
  end
  if state == 'RUNNING' then
    local h = held_entry(P, {id = id, worker = worker, token = token})
    if h then
      local function add(n, v)
        r[#r + 1] = n
        r[#r + 1] = v or ''
      end
      add('seq', h.seq)
      if h.upstream ~= nil then add('upstream', h.upstream) end
      if h.hist then
        local first = (tonumber(h.seq) or 0) - #h.hist + 1
        for k, e in ipairs(h.hist) do add('h:' .. (first + k - 1), e) end
        -- The latest entry's phase and time ("state|phase|at|detail").
        local phase, at = string.match(h.hist[#h.hist], '^[^|]*|([^|]*)|([^|]*)|')
        if phase then
          add('phase', phase)
          add('updated', at)
        end
      end
    end
  end
  out[#out + 1] = r
end
return out
