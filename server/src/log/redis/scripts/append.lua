-- append.lua: appends one batch to a partition with contiguous offsets (one round trip),
-- skipping the produce requests whose (producerId, sequence) this partition already holds.
-- KEYS[1] partition stream            {<prefix>:<topic>:<partition>}:log
-- KEYS[2] partition meta hash         {<prefix>:<topic>:<partition>}:meta
--         (epoch, end, earliest, tok, bytes, maxts, bumps)
-- KEYS[3] producer state hash         {<prefix>:<topic>:<partition>}:producers
--         producerId -> struct ">d" highest sequence, then ">dd" (sequence, base offset) per
--         request, oldest first, at most ARGV[P+1] of them
-- KEYS[4] producer last-seen zset     {<prefix>:<topic>:<partition>}:producers:seen
-- ARGV[1] guard: expected epoch ("" = none)      ARGV[2] guard: expected end offset
-- ARGV[3] guard: expected token of record end-1  ARGV[4] guard: epoch to install on divergence
-- ARGV[5] shard channel to SPUBLISH the new end on (same hash tag as the keys)
-- ARGV[6] batch token: the sequence part of every stream ID of this batch (ID = <offset>-<token>)
-- ARGV[7] retention: minimum running-max timestamp to keep ("" = no time retention)
-- ARGV[8] retention: maximum bytes ("" = no size retention)
-- ARGV[9] n, the number of records; then 5 ARGV per record i (j = 10 + 5*i):
--   ARGV[j] flags ("k" key present, "v" value present, "h" headers present)
--   ARGV[j+1] key bytes   ARGV[j+2] value bytes   ARGV[j+3] encoded headers   ARGV[j+4] timestamp ms
-- then, at P = 10 + 5*n:
-- ARGV[P]   now, ms (score in KEYS[4])
-- ARGV[P+1] window: sequences remembered per producer
-- ARGV[P+2] m, the number of producer entries; then 4 ARGV per entry e (q = P + 3 + 4*e):
--   ARGV[q] producerId   ARGV[q+1] sequence   ARGV[q+2] first record (0-based)   ARGV[q+3] record count
-- Returns {"NOMETA"} when the partition does not exist, else
--   {"OK", epoch, baseOffset, end, earliest, token of record end-1, bumped(0|1), duplicates}
--   where baseOffset is the offset of the first appended record and duplicates a flat list
--   {entry index (0-based), stored base offset, ...} of the entries not appended again.
--!include guard.lua

local meta = load_meta(KEYS[2])
if not meta then return {'NOMETA'} end
local bumped = guard(KEYS[1], KEYS[2], meta)

local n = tonumber(ARGV[9])
local P = 10 + 5 * n
local now = ARGV[P]
local window = tonumber(ARGV[P + 1])
local m = tonumber(ARGV[P + 2])

-- Producer entries: which are already written (skip their records).
local states = {}
local skip = {}
local entries = {}
local dups = {}
for e = 0, m - 1 do
  local q = P + 3 + 4 * e
  local pid = ARGV[q]
  local entry = { pid = pid, seq = tonumber(ARGV[q + 1]), first = tonumber(ARGV[q + 2]), count = tonumber(ARGV[q + 3]) }
  local st = states[pid]
  if not st then
    local raw = redis.call('HGET', KEYS[3], pid)
    st = { max = -1, data = '', batch = {}, dirty = false }
    if raw and #raw >= 8 then
      st.max = struct.unpack('>d', raw)
      st.data = string.sub(raw, 9)
    end
    states[pid] = st
  end
  local stored = nil
  local same = st.batch[entry.seq]
  if same == nil and entry.seq <= st.max then
    local d = st.data
    for pos = #d - 15, 1, -16 do
      local s, b = struct.unpack('>dd', d, pos)
      if s == entry.seq then stored = b; break end
    end
  end
  if same ~= nil or stored ~= nil then
    entry.dup = true
    entry.stored = stored
    entry.same = same
    for i = entry.first, entry.first + entry.count - 1 do skip[i] = true end
  else
    st.batch[entry.seq] = e
  end
  entries[e] = entry
end

local base = meta.e
local tok = ARGV[6]
local bytes = meta.bytes
local maxts = meta.maxts
local appended = 0
local offset_of = {}
for i = 0, n - 1 do
  if not skip[i] then
    local j = 10 + 5 * i
    local flags = ARGV[j]
    local ts = tonumber(ARGV[j + 4])
    local off = base + appended
    offset_of[i] = off
    appended = appended + 1
    local args = { 'XADD', KEYS[1], fmt(off) .. '-' .. tok, 't', ARGV[j + 4] }
    if string.find(flags, 'k', 1, true) then
      args[#args + 1] = 'k'; args[#args + 1] = ARGV[j + 1]; bytes = bytes + #ARGV[j + 1]
    end
    if string.find(flags, 'v', 1, true) then
      args[#args + 1] = 'v'; args[#args + 1] = ARGV[j + 2]; bytes = bytes + #ARGV[j + 2]
    end
    if string.find(flags, 'h', 1, true) then
      args[#args + 1] = 'h'; args[#args + 1] = ARGV[j + 3]; bytes = bytes + #ARGV[j + 3]
    end
    if ts >= maxts then
      maxts = ts
    else
      args[#args + 1] = 'm'; args[#args + 1] = fmt(maxts)
    end
    redis.call(unpack(args))
  end
end

-- Producer state: remember each new entry's base offset; report the duplicates.
for e = 0, m - 1 do
  local entry = entries[e]
  local st = states[entry.pid]
  if entry.dup then
    local b = entry.stored
    if b == nil then b = offset_of[entries[entry.same].first] end
    dups[#dups + 1] = tostring(e)
    dups[#dups + 1] = fmt(b)
  else
    st.data = st.data .. struct.pack('>dd', entry.seq, offset_of[entry.first])
    if entry.seq > st.max then st.max = entry.seq end
    st.dirty = true
  end
end
for pid, st in pairs(states) do
  if st.dirty then
    local limit = window * 16
    if #st.data > limit then st.data = string.sub(st.data, #st.data - limit + 1) end
    redis.call('HSET', KEYS[3], pid, struct.pack('>d', st.max) .. st.data)
  end
  -- Also a write when every entry was a duplicate: a WAIT after this script then covers the
  -- first write too (replication is one ordered stream).
  redis.call('ZADD', KEYS[4], now, pid)
end

if appended > 0 then
  meta.e = base + appended
  meta.bytes = bytes
  meta.maxts = maxts
  redis.call('HSET', KEYS[2], 'end', fmt(meta.e), 'tok', tok, 'bytes', fmt(bytes), 'maxts', fmt(maxts))

  local min_ts = nil
  if ARGV[7] ~= '' then min_ts = tonumber(ARGV[7]) end
  local max_bytes = nil
  if ARGV[8] ~= '' then max_bytes = tonumber(ARGV[8]) end
  if min_ts or max_bytes then enforce_retention(KEYS[1], KEYS[2], meta, min_ts, max_bytes) end

  redis.call('SPUBLISH', ARGV[5], fmt(meta.e))
else
  tok = meta.tok or ''
end
return { 'OK', meta.epoch, fmt(base), fmt(meta.e), fmt(meta.earliest), tok, bumped, dups }
