-- append.lua: appends one batch to a partition with contiguous offsets (one round trip).
-- KEYS[1] partition stream            {<prefix>:<topic>:<partition>}:log
-- KEYS[2] partition meta hash         {<prefix>:<topic>:<partition>}:meta
--         (epoch, end, earliest, tok, bytes, maxts, bumps)
-- ARGV[1] guard: expected epoch ("" = none)      ARGV[2] guard: expected end offset
-- ARGV[3] guard: expected token of record end-1  ARGV[4] guard: epoch to install on divergence
-- ARGV[5] shard channel to SPUBLISH the new end on (same hash tag as the keys)
-- ARGV[6] batch token: the sequence part of every stream ID of this batch (ID = <offset>-<token>)
-- ARGV[7] retention: minimum running-max timestamp to keep ("" = no time retention)
-- ARGV[8] retention: maximum bytes ("" = no size retention)
-- ARGV[9] n, the number of records; then 5 ARGV per record i (j = 10 + 5*i):
--   ARGV[j] flags ("k" key present, "v" value present, "h" headers present)
--   ARGV[j+1] key bytes   ARGV[j+2] value bytes   ARGV[j+3] encoded headers   ARGV[j+4] timestamp ms
-- Returns {"NOMETA"} when the partition does not exist, else
--   {"OK", epoch, baseOffset, end, earliest, token, bumped(0|1)}
--!include guard.lua

local meta = load_meta(KEYS[2])
if not meta then return {'NOMETA'} end
local bumped = guard(KEYS[1], KEYS[2], meta)

local n = tonumber(ARGV[9])
local base = meta.e
local tok = ARGV[6]
local bytes = meta.bytes
local maxts = meta.maxts
for i = 0, n - 1 do
  local j = 10 + 5 * i
  local flags = ARGV[j]
  local ts = tonumber(ARGV[j + 4])
  local args = { 'XADD', KEYS[1], fmt(base + i) .. '-' .. tok, 't', ARGV[j + 4] }
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
meta.e = base + n
meta.bytes = bytes
meta.maxts = maxts
redis.call('HSET', KEYS[2], 'end', fmt(meta.e), 'tok', tok, 'bytes', fmt(bytes), 'maxts', fmt(maxts))

local min_ts = nil
if ARGV[7] ~= '' then min_ts = tonumber(ARGV[7]) end
local max_bytes = nil
if ARGV[8] ~= '' then max_bytes = tonumber(ARGV[8]) end
if min_ts or max_bytes then enforce_retention(KEYS[1], KEYS[2], meta, min_ts, max_bytes) end

redis.call('SPUBLISH', ARGV[5], fmt(meta.e))
return { 'OK', meta.epoch, fmt(base), fmt(meta.e), fmt(meta.earliest), tok, bumped }
