-- Gives up a lease the caller holds (a clean shutdown), so another node takes over at once.
-- KEYS[1] lease key
-- ARGV[1] "<nodeId>|<epoch>" the caller holds
-- Returns 1 when released, 0 when it was not the caller's.
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0
