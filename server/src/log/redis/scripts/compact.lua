-- compact.lua: one step of a partition's log compaction (cleanupPolicy "compact").
-- KEYS[1] partition stream            {<prefix>:<topic>:<partition>}:log
-- KEYS[2] partition meta hash         {<prefix>:<topic>:<partition>}:meta
--         (reads epoch, end, earliest, bytes; keeps the cleaner cursor in 'ccur' and the
--         epoch it was built under in 'cepoch')
-- KEYS[3] offset map hash             {<prefix>:<topic>:<partition>}:ckeys
--         record key -> offset of its last record (indexed records only)
-- KEYS[4] tombstone zset              {<prefix>:<topic>:<partition>}:ctomb
--         record key -> timestamp ms, for keys whose last record is a tombstone (no value)
-- ARGV[1] the most records to index in this step
-- ARGV[2] tombstone cutoff, ms: a key's last-record tombstone with timestamp < this is removed
-- ARGV[3] minimum dirty ratio to start (0 = always): records not yet indexed / records in the stream
-- ARGV[4] 1 on the first step of a pass (the ratio is checked), 0 on the next ones
-- Indexing walks the stream from the cursor: each keyed record replaces its key's previous
-- record, which is deleted (XDEL); each keyless record is deleted (a topic switched to
-- compact may hold some). Then expired tombstones are deleted, never record end-1 (the epoch
-- guard compares its stream ID). Offsets never change; 'bytes' drops by what was deleted.
-- A record is deleted only if it still carries the key it is deleted for. If the history
-- was rewritten under the cleaner (another epoch, or the end went below the cursor: a
-- failover lost a tail and offsets are being reused), its state is dropped and rebuilt.
-- Returns {"NOMETA"}, {"SKIP"} (dirty ratio below ARGV[3]), or
--   {"OK", indexed, removed, tombstones removed, done (1 when the cursor reached the end), bytes before, bytes after}.
--!include guard.lua

local meta = load_meta(KEYS[2])
if not meta then return {'NOMETA'} end
local state = redis.call('HMGET', KEYS[2], 'ccur', 'cepoch')
local cur = tonumber(state[1] or '0')
if (state[2] and state[2] ~= meta.epoch) or cur > meta.e then
  redis.call('DEL', KEYS[3], KEYS[4])
  cur = 0
end
if cur < meta.earliest then cur = meta.earliest end
local bytes_before = meta.bytes
if ARGV[4] == '1' then
  local dirty = meta.e - cur
  if dirty <= 0 then return {'SKIP'} end
  local live = redis.call('XLEN', KEYS[1])
  if live > 0 and dirty / live < tonumber(ARGV[3]) then return {'SKIP'} end
end

local function entry_fields(entry)
  local f = entry[2]
  local out = { size = 0 }
  for i = 1, #f, 2 do
    local name = f[i]
    if name == 'k' then out.k = f[i + 1]; out.size = out.size + #f[i + 1]
    elseif name == 'v' then out.v = true; out.size = out.size + #f[i + 1]
    elseif name == 'h' then out.size = out.size + #f[i + 1]
    elseif name == 't' then out.t = tonumber(f[i + 1]) end
  end
  return out
end

local function offset_of(id)
  return tonumber(string.match(id, '^(%d+)'))
end

local last = meta.e - 1
local removed = 0
local tombs = 0
local bytes = meta.bytes

-- Deletes the record at offset `off` if it is still there, is not record end-1, and has key `k` (nil: no key).
local function drop(off, k)
  if off >= last or off < meta.earliest then return false end
  local id = fmt(off)
  local r = redis.call('XRANGE', KEYS[1], id, id, 'COUNT', 1)
  if #r == 0 then return false end
  local fields = entry_fields(r[1])
  if fields.k ~= k then return false end
  redis.call('XDEL', KEYS[1], r[1][1])
  bytes = bytes - fields.size
  removed = removed + 1
  return true
end

local indexed = 0
local limit = tonumber(ARGV[1])
if cur < meta.e then
  local entries = redis.call('XRANGE', KEYS[1], fmt(cur), '+', 'COUNT', limit)
  for _, entry in ipairs(entries) do
    local off = offset_of(entry[1])
    if off >= meta.e then break end
    local f = entry_fields(entry)
    if f.k == nil then
      drop(off, nil)
    else
      local prev = redis.call('HGET', KEYS[3], f.k)
      if prev then
        local p = tonumber(prev)
        if p < off then drop(p, f.k) end
      end
      redis.call('HSET', KEYS[3], f.k, fmt(off))
      if f.v then
        redis.call('ZREM', KEYS[4], f.k)
      else
        redis.call('ZADD', KEYS[4], f.t or 0, f.k)
      end
    end
    indexed = indexed + 1
    cur = off + 1
  end
  if #entries < limit then cur = meta.e end
end
redis.call('HSET', KEYS[2], 'ccur', fmt(cur), 'cepoch', meta.epoch)

-- Expired tombstones (at most `limit` per step; one that is record end-1 stays for a later pass).
local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[2], 'LIMIT', 0, limit)
for _, k in ipairs(expired) do
  local off = tonumber(redis.call('HGET', KEYS[3], k) or '-1')
  if off < 0 or off < meta.earliest then
    redis.call('HDEL', KEYS[3], k)
    redis.call('ZREM', KEYS[4], k)
  elseif off < last then
    if drop(off, k) then tombs = tombs + 1 end
    redis.call('HDEL', KEYS[3], k)
    redis.call('ZREM', KEYS[4], k)
  end
end

if bytes < 0 then bytes = 0 end
redis.call('HSET', KEYS[2], 'bytes', fmt(bytes))
local done = 0
if cur >= meta.e then done = 1 end
return { 'OK', indexed, removed, tombs, done, fmt(bytes_before), fmt(bytes) }
