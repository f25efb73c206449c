-- The outcome of one delivery attempt. `outcome`: delivered, retry (due again at next_at) or
-- failed (given up). A delivery already marked delivered stays so (another deliverer's
-- duplicate attempt may end later, and worse).
-- ARGV: P now id outcome status error next_at keep_s
local P, now, id, outcome = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local status, err, next_at, keep = ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local key = P .. ':wh:' .. id
local state = redis.call('HGET', key, 'state')
if not state then
  redis.call('ZREM', P .. ':whdue', id)
  return 'GONE'
end
if state ~= 'pending' then return state end
if outcome == 'retry' then
  redis.call('HSET', key, 'last_status', status, 'last_error', err, 'last_at', now, 'next_at',
             next_at)
  redis.call('ZADD', P .. ':whdue', next_at, id)
else
  redis.call('HSET', key, 'state', outcome, 'last_status', status, 'last_error', err, 'last_at',
             now, 'next_at', 0)
  redis.call('ZREM', P .. ':whdue', id)
  redis.call('EXPIRE', key, keep)
end
return outcome
