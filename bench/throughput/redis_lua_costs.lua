-- What the building blocks of queue/lua cost inside Redis, per operation, on this machine
-- (issue 11: the floor of a Lua-scripted job life). Run against a scratch redis-server only:
--   redis-server --port 6999 --save '' --appendonly no --hash-max-listpack-value 1024 &
--   redis-cli -p 6999 --eval bench/throughput/redis_lua_costs.lua , 2000
-- It writes and then deletes keys under `luacost:`. Times are wall-clock (redis TIME) over
-- ARGV[1] repetitions, so run it on an otherwise idle machine and take the lowest of a few runs.
local n = tonumber(ARGV[1]) or 2000
local function us()
  local t = redis.call('TIME')
  return t[1] * 1e6 + t[2]
end
local spec = string.rep('s', 300)
-- A queued job's record as submit.lua writes it (17 fields, a 300-byte spec).
for i = 1, n do
  redis.call('HSET', 'luacost:job:' .. i, 'state', 'PENDING', 'seq', '1', 'models', 'm1', 'tenant',
             'studio', 'batch', 'b1', 'spec', spec, 'bill', '1', 'hold', '100', 'secs', '5', 'res',
             '720p', 'h:1', 'PENDING||1733450000000|submitted', 'created', '1733450000000',
             'max_attempts', '3', 'pref', '1', 'score', '123456789', 'webhook', '', 'parent', '')
end
local READ = {'state', 'seq', 'models', 'model', 'batch', 'tenant', 'bill', 'hold', 'secs', 'res',
              'cost', 'webhook', 'parent', 'mbatch'}
local out = {}
local function time(name, f)
  local t0 = us()
  for i = 1, n do f(i) end
  out[#out + 1] = string.format('%s %.2f', name, (us() - t0) / n)
end
time('call_ping', function() redis.call('PING') end)
time('hmget_1_field', function(i) redis.call('HMGET', 'luacost:job:' .. i, 'state') end)
time('hmget_14_fields', function(i) redis.call('HMGET', 'luacost:job:' .. i, unpack(READ)) end)
time('hmget_14_to_table', function(i)
  local v = redis.call('HMGET', 'luacost:job:' .. i, unpack(READ))
  local job = {id = i}
  for k = 1, #READ do job[READ[k]] = v[k] end
end)
time('hset_1_field', function(i) redis.call('HSET', 'luacost:job:' .. i, 'phase', 'x') end)
time('hset_10_fields', function(i)
  redis.call('HSET', 'luacost:job:' .. i, 'state', 'DISPATCHED', 'phase', '', 'updated',
             '1733450000001', 'seq', '2', 'h:2', 'DISPATCHED||1733450000001|m1 via a1', 'model',
             'm1', 'account', 'a1', 'slot', 'a1', 'dispatched', '1733450000001', 'token', '7/w1')
end)
local entry = {}
for k = 1, 19 do entry[k] = 'value' .. k end
time('cjson_encode_19', function() cjson.encode(entry) end)
local text = cjson.encode(entry)
time('cjson_decode_19', function() cjson.decode(text) end)
time('table_30_fields', function(i)
  local t = {id = i}
  for k = 1, #READ do t[READ[k]] = k end
  for k = 1, #READ do t[READ[k] .. '_'] = k end
end)
local now = 1733450000001
time('number_to_string', function() local s = 'x' .. now end)
time('string_format_d', function() string.format('%d', now) end)
time('concat_8_table', function(i)
  table.concat({'j' .. i, '2', 'DISPATCHED', '', '1733450000001', 'b1', 'studio', 'm1 via a1'},
               '\31')
end)
for i = 1, n do redis.call('DEL', 'luacost:job:' .. i) end
return 'microseconds per operation: ' .. table.concat(out, ', ')
