-- offset-for-timestamp.lua: first offset whose timestamp >= ARGV[1] (the end offset if none).
-- KEYS[1] partition stream            {<prefix>:<topic>:<partition>}:log
-- KEYS[2] partition meta hash         {<prefix>:<topic>:<partition>}:meta
-- ARGV[1] timestamp, ms since the epoch
-- Returns {"NOMETA"} or {"OK", offset}. Exact: every record stores its running max timestamp
-- (field "m" when it differs from its own "t"), which never decreases along the offsets.
--!include guard.lua

local meta = load_meta(KEYS[2])
if not meta then return {'NOMETA'} end
return { 'OK', fmt(search_ts(KEYS[1], meta.earliest, meta.e, tonumber(ARGV[1]))) }
