-- Reads one job whole: its record, its transition history and every attempt's error.
-- ARGV: P id1 [id2 ...]. Returns per id {fields(flat), history, errors(list)} (fields empty
-- when the job does not exist).
local P = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local j = jkey(P, ARGV[i])
  out[#out + 1] = {redis.call('HGETALL', j), redis.call('GET', j .. ':hist') or '',
                   redis.call('LRANGE', j .. ':errors', 0, -1)}
end
return out
