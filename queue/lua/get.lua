-- Reads jobs whole: the record holds its transition history (h:<seq>) and every attempt's
-- error (e:<seq>). ARGV: P id1 [id2 ...]. Returns per id its fields as a flat list (empty when
-- the job does not exist).
local P = ARGV[1]
local out = {}
for i = 2, #ARGV do out[#out + 1] = redis.call('HGETALL', jkey(P, ARGV[i])) end
return out
