-- trim.lua: applies a partition's retention (periodic pass for idle partitions).
-- KEYS[1] partition stream            {<prefix>:<topic>:<partition>}:log
-- KEYS[2] partition meta hash         {<prefix>:<topic>:<partition>}:meta
-- ARGV[1] minimum running-max timestamp to keep ("" = no time retention)
-- ARGV[2] maximum bytes ("" = no size retention)
-- Returns {"NOMETA"} or {"OK", earliest, end}.
--!include guard.lua

local meta = load_meta(KEYS[2])
if not meta then return {'NOMETA'} end
local min_ts = nil
if ARGV[1] ~= '' then min_ts = tonumber(ARGV[1]) end
local max_bytes = nil
if ARGV[2] ~= '' then max_bytes = tonumber(ARGV[2]) end
enforce_retention(KEYS[1], KEYS[2], meta, min_ts, max_bytes)
return { 'OK', fmt(meta.earliest), fmt(meta.e) }
