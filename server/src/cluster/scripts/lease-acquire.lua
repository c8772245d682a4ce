-- Acquires a group's coordinator lease if nobody holds it; returns the holder either way.
-- KEYS[1] lease key   (string "<nodeId>|<epoch>", PX ttl)
-- KEYS[2] epoch key   (integer, incremented at every acquisition: the fencing token)
-- ARGV[1] nodeId of the caller
-- ARGV[2] ttl in ms
-- Returns "<nodeId>|<epoch>" of the holder (the caller's when it acquired).
local current = redis.call("GET", KEYS[1])
if current then return current end
local epoch = redis.call("INCR", KEYS[2])
local value = ARGV[1] .. "|" .. epoch
redis.call("SET", KEYS[1], value, "PX", ARGV[2])
return value
