-- Cancels a job in any non-terminal state. A RUNNING job's worker learns it at its next
-- heartbeat, stops, and cancels upstream where the provider allows.
-- ARGV: P now id
-- Returns {previous_state, upstream, account} or an error reply NOTFOUND / TERMINAL <state>.
local P, now, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local j = jkey(P, id)
local h = redis.call('HMGET', j, 'state', 'tenant', 'account', 'upstream', 'slot')
if not h[1] then return redis.error_reply('NOTFOUND') end
if is_terminal(h[1]) then return redis.error_reply('TERMINAL ' .. h[1]) end
if h[1] == 'PENDING' then
  redis.call('ZREM', P .. ':pending:' .. h[2], id)
  redis.call('ZREM', P .. ':delayed', id)
else
  release_slot(P, h[5], h[3])
  redis.call('ZREM', P .. ':leases', id)
end
transition(P, id, now, h[1], 'CANCELLED', '', 'cancelled by request', {'finished', now, 'slot', ''})
return {h[1], h[4] or '', h[3] or ''}
