-- Acquires a group's coordinator lease if nobody holds it; returns the holder either way.
-- KEYS[1] lease key   (string "<nodeId>|<epoch>", PX ttl)
-- KEYS[2] epoch key   (integer, incremented at every acquisition: the fencing token)
-- ARGV[1] nodeId of the caller
-- ARGV[2] ttl in ms
-- ARGV[3] the caller's clock, ms: the epoch never goes below it, so epochs keep growing even
--         after Redis lost the counter (a restart without persistence)
-- Returns "<nodeId>|<epoch>" of the holder (the caller's when it acquired).
local current = redis.call("GET", KEYS[1])
if current then return current end
local epoch = redis.call("INCR", KEYS[2])
local floor = tonumber(ARGV[3])
if epoch < floor then
  epoch = floor
  redis.call("SET", KEYS[2], epoch)
end
local value = ARGV[1] .. "|" .. epoch
redis.call("SET", KEYS[1], value, "PX", ARGV[2])
return value
