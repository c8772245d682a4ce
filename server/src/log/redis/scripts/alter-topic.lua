-- alter-topic.lua: changes a topic's retention and cleanup settings if the topic exists.
-- KEYS[1] topic hash                  {<prefix>:topic:<topic>}
-- ARGV[1] retentionMs ("" = null)  ARGV[2] retentionBytes ("" = null)  ARGV[3] cleanupPolicy
-- ARGV[4] deleteRetentionMs  ARGV[5] minCleanableDirtyRatio  ARGV[6] segmentBytes ("" = null)
-- Returns 1 when changed, 0 when the topic does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'retentionMs', ARGV[1], 'retentionBytes', ARGV[2], 'cleanupPolicy', ARGV[3],
  'deleteRetentionMs', ARGV[4], 'minCleanableDirtyRatio', ARGV[5], 'segmentBytes', ARGV[6])
return 1
