-- expire-producers.lua: forgets the producers of a partition idle since before ARGV[1].
-- KEYS[1] producer state hash         {<prefix>:<topic>:<partition>}:producers
-- KEYS[2] producer last-seen zset     {<prefix>:<topic>:<partition>}:producers:seen
-- ARGV[1] oldest last-append time (ms) to keep
-- ARGV[2] most producers to forget in this call (the caller calls again while it returns that many)
-- Returns the number of producers forgotten.

local idle = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #idle == 0 then return 0 end
redis.call('HDEL', KEYS[1], unpack(idle))
redis.call('ZREM', KEYS[2], unpack(idle))
return #idle
