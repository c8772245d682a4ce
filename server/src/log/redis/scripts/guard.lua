-- guard.lua: shared helpers, included (--!include) by append.lua, read.lua, trim.lua.
-- It declares no KEYS/ARGV of its own; the epoch guard reads the including script's
--   ARGV[1] expected epoch (the caller's high-water mark; "" = the caller has none)
--   ARGV[2] expected end offset (the end the caller has already observed under that epoch)
--   ARGV[3] expected token: the sequence part of record (end - 1)'s stream ID
--   ARGV[4] the fresh epoch to install when the history diverged
--
-- Epoch rule: a caller that has seen the partition at (epoch E, end N, token T) expects the
-- partition, while it is still in epoch E, to extend that history: end >= N and record N-1
-- carries token T. If the end went backwards, or record N-1 is another record (a failover or a
-- restart without persistence lost the tail and new records reused its offsets), the epoch is
-- replaced by ARGV[4], atomically with the check, so every position taken under E is stale.

local function fmt(n)
  return string.format('%.0f', n)
end

local function load_meta(meta_key)
  local m = redis.call('HMGET', meta_key, 'epoch', 'end', 'earliest', 'tok', 'bytes', 'maxts')
  if not m[1] then return nil end
  return {
    epoch = m[1], e = tonumber(m[2]), earliest = tonumber(m[3]), tok = m[4],
    bytes = tonumber(m[5]) or 0, maxts = tonumber(m[6]) or 0,
  }
end

local function guard(log_key, meta_key, meta)
  local exp_epoch = ARGV[1]
  if exp_epoch == '' or exp_epoch ~= meta.epoch then return 0 end
  local exp_end = tonumber(ARGV[2])
  if exp_end <= 0 then return 0 end
  local diverged = false
  if meta.e < exp_end then
    diverged = true
  elseif exp_end - 1 >= meta.earliest then
    local last = fmt(exp_end - 1)
    local r = redis.call('XRANGE', log_key, last, last, 'COUNT', 1)
    if #r == 0 or r[1][1] ~= (last .. '-' .. ARGV[3]) then diverged = true end
  end
  if not diverged then return 0 end
  meta.epoch = ARGV[4]
  redis.call('HSET', meta_key, 'epoch', meta.epoch)
  redis.call('HINCRBY', meta_key, 'bumps', 1)
  return 1
end

-- Running max timestamp of a stream entry: field "m" when present, else its own "t".
local function entry_max_ts(entry)
  local fields = entry[2]
  local t = nil
  for i = 1, #fields, 2 do
    if fields[i] == 'm' then return tonumber(fields[i + 1]) end
    if fields[i] == 't' then t = tonumber(fields[i + 1]) end
  end
  return t
end

-- First offset in [lo, hi) whose running max timestamp >= ts (hi if none). Binary search:
-- the running max never decreases along the offsets.
local function search_ts(log_key, lo, hi, ts)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local id = fmt(mid)
    local r = redis.call('XRANGE', log_key, id, '+', 'COUNT', 1)
    if #r == 0 then return hi end
    local m = entry_max_ts(r[1])
    if m < ts then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- Retention: drops records older than min_ts (by running max timestamp) and, when the
-- tracked size passes max_bytes, the oldest records by the average record size (approximate,
-- keeps at least the last record). Moves 'earliest' and 'bytes' in the meta hash.
local function enforce_retention(log_key, meta_key, meta, min_ts, max_bytes)
  local count = meta.e - meta.earliest
  if count <= 0 then return end
  local new_earliest = meta.earliest
  if max_bytes and meta.bytes > max_bytes then
    local avg = meta.bytes / count
    local drop = math.ceil((meta.bytes - max_bytes) / avg)
    if drop > count - 1 then drop = count - 1 end
    new_earliest = meta.earliest + drop
  end
  if min_ts and new_earliest < meta.e then
    local first = redis.call('XRANGE', log_key, fmt(new_earliest), '+', 'COUNT', 1)
    if #first > 0 and entry_max_ts(first[1]) < min_ts then
      new_earliest = search_ts(log_key, new_earliest, meta.e, min_ts)
    end
  end
  if new_earliest <= meta.earliest then return end
  redis.call('XTRIM', log_key, 'MINID', fmt(new_earliest))
  local left = meta.e - new_earliest
  local bytes = 0
  if left > 0 then bytes = math.floor(meta.bytes * left / count) end
  meta.earliest = new_earliest
  meta.bytes = bytes
  redis.call('HSET', meta_key, 'earliest', fmt(new_earliest), 'bytes', fmt(bytes))
end
