-- commit-offset.lua: stores a group's committed position (epoch, offset) on one partition.
-- KEYS[1] group offsets hash          {<prefix>:group:<group>}:offsets
--         field "<topic>:<partition>" -> "<offset>|<committedAt>[@<epoch>]|<metadata>"
--         no "@<epoch>": the epoch is unknown (so are values written before commits had epochs)
-- ARGV[1] field  ARGV[2] offset  ARGV[3] committedAt ms  ARGV[4] metadata
-- ARGV[5] "1" = repair: write only when nothing is stored, or the stored value has the same
--         epoch (ARGV[6]) and a strictly lower offset (keeps its metadata when equal);
--         "0" = a normal commit (below)
-- ARGV[6] epoch, URI-encoded (never contains '|' or '@'); "" = unknown
-- A normal commit continues the stored history when its epoch is unknown or equal to the
-- stored one: then the offset only rises (a lower one is ignored, compare-and-set). A commit
-- with a known epoch replaces a value of another or of an unknown epoch, whatever the offsets
-- (a new history: e.g. a group reset to earliest after its partition's history was rewritten).
-- Returns the stored value after the call.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local so, se = string.match(cur, '^(%d+)|%d+@?([^|]*)|')
  if so then
    local stored = tonumber(so)
    local offset = tonumber(ARGV[2])
    local epoch = ARGV[6]
    if ARGV[5] == '1' then
      if se ~= epoch or stored >= offset then return cur end
    elseif (epoch == '' or se == epoch) and stored > offset then
      return cur
    end
  end
end
local value = ARGV[2] .. '|' .. ARGV[3]
if ARGV[6] ~= '' then value = value .. '@' .. ARGV[6] end
value = value .. '|' .. ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], value)
return value
