-- Extends a lease the caller still holds.
-- KEYS[1] lease key
-- ARGV[1] "<nodeId>|<epoch>" the caller holds
-- ARGV[2] ttl in ms
-- Returns 1 when renewed, 0 when the lease is gone or held by someone else.
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
return 0
