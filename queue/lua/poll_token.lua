-- Takes one token from an account's fleet-wide poll bucket, for providers that count status
-- polls against a quota (accounts[].polls_per_minute). It never refuses: it reserves the
-- earliest moment this poll may go out and returns how long the caller must wait for it, so a
-- worker makes exactly one Redis call per poll and waits instead of failing.
-- GCRA (a token bucket kept as one timestamp, `poll_tat`: when the bucket would be full again):
-- a bucket of B = max(1, floor(ppm / 60)) tokens refilled one token every
-- T = ceil(60000 / (ppm - B + 1)) ms. Any k polls released within a 60 s window then satisfy
-- (k - 1) * T - (B - 1) * T < 60000, so k <= ppm: no sliding minute sees more than the quota.
-- ARGV: P now account polls_per_minute
-- Returns wait_ms (0: poll now).
local P, now, account, ppm = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
if not ppm or ppm <= 0 then return 0 end
local burst = math.max(1, math.floor(ppm / 60))
local interval = math.ceil(60000 / (ppm - burst + 1))
local a = P .. ':acct:' .. account
local tat = tonumber(redis.call('HGET', a, 'poll_tat') or '') or now
local at = math.max(now, tat - (burst - 1) * interval)
redis.call('HSET', a, 'poll_tat', math.max(tat, at) + interval)
return at - now
