-- read.lua: a consistent snapshot of a partition's state and, optionally, records from an offset.
-- KEYS[1] partition stream            {<prefix>:<topic>:<partition>}:log
-- KEYS[2] partition meta hash         {<prefix>:<topic>:<partition>}:meta
-- ARGV[1] guard: expected epoch ("" = none)      ARGV[2] guard: expected end offset
-- ARGV[3] guard: expected token of record end-1  ARGV[4] guard: epoch to install on divergence
-- ARGV[5] first offset to read
-- ARGV[6] maximum number of records (0 = state only)
-- Returns {"NOMETA"} when the partition does not exist, else
--   {"OK", epoch, earliest, end, token, bumped(0|1), entries, compacted(0|1)}; entries is empty
--   when the offset is outside [earliest, end) (the caller decides between [] and
--   OFFSET_OUT_OF_RANGE); compacted is 1 once compaction ran on the partition (offsets may have gaps).
--!include guard.lua

local meta = load_meta(KEYS[2])
if not meta then return {'NOMETA'} end
local bumped = guard(KEYS[1], KEYS[2], meta)
local entries = {}
local offset = tonumber(ARGV[5])
local count = tonumber(ARGV[6])
if count > 0 and offset >= meta.earliest and offset < meta.e then
  entries = redis.call('XRANGE', KEYS[1], fmt(offset), '+', 'COUNT', count)
end
return { 'OK', meta.epoch, fmt(meta.earliest), fmt(meta.e), meta.tok or '0', bumped, entries, redis.call('HEXISTS', KEYS[2], 'ccur') }
