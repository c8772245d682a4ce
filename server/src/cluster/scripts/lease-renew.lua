-- Extends a lease the caller still holds. A lease that expired meanwhile (the holder was
-- slow to renew) is taken back only if nobody acquired it since: the epoch counter still
-- equals the caller's epoch, so no other coordinator can have acted in between.
-- KEYS[1] lease key
-- KEYS[2] epoch key
-- ARGV[1] "<nodeId>|<epoch>" the caller holds
-- ARGV[2] ttl in ms
-- ARGV[3] the caller's epoch
-- Returns 1 when renewed, 0 when the lease is held by someone else or was re-acquired since.
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
if not current and redis.call("GET", KEYS[2]) == ARGV[3] then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0
