-- The latest delivery of a job's or a batch's webhook.
-- ARGV: P kind(job|batch) id
-- Returns the delivery's fields (flat name, value list) with its id as field 'id'; empty when
-- there is none.
local P, kind, id = ARGV[1], ARGV[2], ARGV[3]
local last = redis.call('HGET', P .. ':' .. kind .. ':' .. id, 'wh_last')
if not last then return {} end
local fields = redis.call('HGETALL', P .. ':wh:' .. last)
if #fields == 0 then return {} end
fields[#fields + 1] = 'id'
fields[#fields + 1] = last
return fields
