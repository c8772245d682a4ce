-- create-topic.lua: registers a topic's config unless the topic exists.
-- KEYS[1] topic hash                  {<prefix>:topic:<topic>}
-- ARGV[1] partitions  ARGV[2] retentionMs ("" = null)  ARGV[3] retentionBytes ("" = null)
-- ARGV[4] replicationFactor  ARGV[5] cleanupPolicy  ARGV[6] createdAt ms
-- ARGV[7] deleteRetentionMs  ARGV[8] minCleanableDirtyRatio  ARGV[9] segmentBytes ("" = null)
-- Returns 1 when created, 0 when the topic already exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'partitions', ARGV[1], 'retentionMs', ARGV[2], 'retentionBytes', ARGV[3],
  'replicationFactor', ARGV[4], 'cleanupPolicy', ARGV[5], 'createdAt', ARGV[6],
  'deleteRetentionMs', ARGV[7], 'minCleanableDirtyRatio', ARGV[8], 'segmentBytes', ARGV[9])
return 1
