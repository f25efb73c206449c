-- Names a batch's webhook (SubmitBatchRequest.batch_webhook_url) before its first job is stored:
-- kept on the batch record, where submit.lua reads it for every job stored into the batch
-- (through any scheduler) and common_webhook.lua when one of them ends. `tenant` is who set it
-- ('' for an admin or a scheduler without authentication): only that tenant's jobs report to
-- it. A record that holds no job yet lapses after ttl_ms unless a job is stored into the batch
-- (submit.lua makes it lasting), so a webhook named for a batch never submitted leaves nothing.
-- ARGV: P batch url tenant all(0|1) ttl_ms
local P, batch, url, tenant, all = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ttl = tonumber(ARGV[6]) or 0
local key = P .. ':batch:' .. batch
local had_jobs = redis.call('HEXISTS', key, 'total') == 1
-- A batch that already holds jobs keeps the webhook it has: its jobs stored before were stored
-- without this one (submit.lua marks each job with its batch's hook as it stores it), so a hook
-- named now would never hear of them, and batch.completed could be lost when one of them ends
-- last. The same webhook named again (a stream sent again) is fine.
if had_jobs then
  local h = redis.call('HMGET', key, 'webhook', 'wh_all', 'total')
  if h[1] ~= url or (h[2] or '0') ~= all then
    return redis.error_reply('HASJOBS ' .. tostring(h[3]) .. ' ' .. tostring(h[1] or ''))
  end
end
redis.call('HSET', key, 'webhook', url, 'wh_tenant', tenant, 'wh_all', all)
if not had_jobs and ttl > 0 then redis.call('PEXPIRE', key, math.floor(ttl)) end
return 'OK'
