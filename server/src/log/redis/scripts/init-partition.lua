-- init-partition.lua: creates a partition's meta hash if it is missing (idempotent).
-- KEYS[1] partition stream            {<prefix>:<topic>:<partition>}:log
-- KEYS[2] partition meta hash         {<prefix>:<topic>:<partition>}:meta
-- ARGV[1] a fresh random epoch (used only if the meta hash is missing)
-- ARGV[2] now, ms (creation time)
-- If the stream survived without its meta hash, end/earliest are rebuilt from the stream, so
-- its offsets are never handed out again; the epoch is new in every case.
-- Returns the partition's epoch.
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if epoch then return epoch end
local e = 0
local earliest = 0
local tok = '0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #last > 0 then
    e = tonumber(string.match(last[1][1], '^(%d+)')) + 1
    earliest = tonumber(string.match(first[1][1], '^(%d+)'))
    tok = string.match(last[1][1], '-(%d+)$')
  end
end
redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'end', string.format('%.0f', e),
  'earliest', string.format('%.0f', earliest), 'tok', tok, 'bytes', '0', 'maxts', '0', 'created', ARGV[2])
return ARGV[1]
