-- Webhooks (issue 13), prepended BEFORE common.lua so transition() can call webhook_note: a
-- delivery is recorded by the very script call that makes the change it reports, so no change
-- is ever made without its delivery (at least once). Keys: wh:<id> (hash: one delivery; the id
-- is the webhook-id header, the same on every attempt) and whdue (sorted set: delivery id by
-- the time its next attempt is due; a deliverer claims one by pushing its score a lease ahead,
-- webhook_claim.lua).
-- A job's `webhook` field is "<flags>|<url>": flag 'e' sends its end to url, 'a' each of its
-- changes, 'b' says its batch has a webhook (whose end is checked when the job ends).

-- Fields of a transition that go into the event's data.
local WEBHOOK_DATA = {output_key = true, output_url = true, sidecar_key = true, sha256 = true,
                      clip_seconds = true, err_cat = true, err_msg = true, err_code = true}
-- A record's `out`: output_key sidecar_key sha256 clip_seconds output_url, \31 between.
local OUT_SPLIT = '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)$'

-- RFC 3339 UTC from epoch milliseconds (Redis's Lua has no os.date).
local function webhook_iso_time(ms)
  local s = math.floor(ms / 1000)
  local z = math.floor(s / 86400)
  local sod = s - z * 86400
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) -
                          math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, math.floor(sod / 3600),
                       math.floor(sod % 3600 / 60), sod % 60, math.floor(ms % 1000))
end

local function webhook_record(P, now, id, url, tenant, event_type, data)
  local body = cjson.encode({type = event_type, timestamp = webhook_iso_time(now), data = data})
  redis.call('HSET', P .. ':wh:' .. id, 'url', url, 'tenant', tenant or '', 'type', event_type,
             'body', body, 'state', 'pending', 'attempts', 0, 'created', now, 'next_at', now)
  redis.call('ZADD', P .. ':whdue', now, id)
end

-- Called by transition() after `job` moved to `to_state` (seq `seq`; `fields` what it wrote).
local function webhook_note(ctx, job, to_state, phase, seq, detail, fields)
  local hook = job.webhook
  if hook == nil then  -- submit.lua: the new job's fields are all there is
    for i = 1, #fields - 1, 2 do if fields[i] == 'webhook' then hook = fields[i + 1] end end
  end
  if not hook or hook == '' then return end
  local bar = string.find(hook, '|', 1, true)
  if not bar then return end
  local flags, url = string.sub(hook, 1, bar - 1), string.sub(hook, bar + 1)
  local ended = to_state == 'SUCCEEDED' or to_state == 'FAILED' or to_state == 'CANCELLED'
  local P = ctx.P
  if url ~= '' and (string.find(flags, 'a', 1, true) or (ended and string.find(flags, 'e', 1, true))) then
    local data = {job_id = job.id, state = to_state, phase = phase, seq = seq,
                  detail = detail or '', tenant = job.tenant or '', batch_id = job.batch or '',
                  model = job.model or ''}
    for i = 1, #fields - 1, 2 do
      if WEBHOOK_DATA[fields[i]] then data[fields[i]] = fields[i + 1] end
      if fields[i] == 'out' then  -- complete.lua's outputs as one field
        local key, sidecar, sha, secs, url = string.match(fields[i + 1], OUT_SPLIT)
        data.output_key, data.sidecar_key, data.sha256 = key, sidecar, sha
        data.clip_seconds, data.output_url = secs, url
      end
    end
    local id = 'msg_' .. job.id .. '_' .. seq
    webhook_record(P, ctx.now, id, url, job.tenant, 'job.' .. string.lower(to_state), data)
    redis.call('HSET', P .. ':job:' .. job.id, 'wh_last', id)
  end
  if ended and job.batch and job.batch ~= '' and string.find(flags, 'b', 1, true) then
    -- The batch's counters of this call are still in ctx (flush writes them): add them.
    local b = P .. ':batch:' .. job.batch
    local r = redis.call('HMGET', b, 'webhook', 'total', 'SUCCEEDED', 'FAILED', 'CANCELLED')
    if not r[1] or r[1] == '' then return end
    local c = ctx.counters[b] or {}
    local total = (tonumber(r[2]) or 0) + (c.total or 0)
    local s = (tonumber(r[3]) or 0) + (c.SUCCEEDED or 0)
    local f = (tonumber(r[4]) or 0) + (c.FAILED or 0)
    local x = (tonumber(r[5]) or 0) + (c.CANCELLED or 0)
    if total > 0 and s + f + x == total then
      local id = 'msg_' .. job.id .. '_' .. seq .. '_batch'
      webhook_record(P, ctx.now, id, r[1], job.tenant, 'batch.completed',
                     {batch_id = job.batch, tenant = job.tenant or '', total = total,
                      succeeded = s, failed = f, cancelled = x})
      redis.call('HSET', b, 'wh_last', id)
    end
  end
end
