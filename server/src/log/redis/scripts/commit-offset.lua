-- commit-offset.lua: stores a group's committed offset; it only ever moves forward.
-- KEYS[1] group offsets hash          {<prefix>:group:<group>}:offsets
--         field "<topic>:<partition>" -> "<offset>|<committedAt>|<metadata>"
-- ARGV[1] field  ARGV[2] offset  ARGV[3] committedAt ms  ARGV[4] metadata
-- ARGV[5] "1" = repair: write only if the stored offset is strictly lower (keeps its metadata
--         when equal); "0" = a normal commit: write when the stored offset is not higher
-- A commit below the stored offset is ignored (compare-and-set that only raises).
-- Returns the stored value after the call.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local stored = tonumber(string.match(cur, '^(%d+)|'))
  if stored and stored > tonumber(ARGV[2]) then return cur end
  if stored and ARGV[5] == '1' and stored >= tonumber(ARGV[2]) then return cur end
end
local value = ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], value)
return value
