/**
 * Key layout of the Redis engine (private to it). Every key of one partition shares the hash
 * tag `{<prefix>:<topic>:<partition>}`, so a Lua script touching them is cluster-safe and
 * Redis Cluster spreads partitions over shards.
 *
 *   <prefix>:topics                                 set of topic names
 *   <prefix>:groups                                 set of group ids with committed offsets
 *   {<prefix>:topic:<topic>}                        hash: topic config
 *   {<prefix>:<topic>:<partition>}:log              stream: records, ID = <offset>-<batch token>
 *   {<prefix>:<topic>:<partition>}:meta             hash: epoch, end, earliest, tok, bytes, maxts
 *   {<prefix>:<topic>:<partition>}:notify           shard channel: new end offset after appends
 *   {<prefix>:<topic>:<partition>}:producers        hash: producerId -> recent (sequence, base offset) window
 *   {<prefix>:<topic>:<partition>}:producers:seen   sorted set: producerId by last append time (ms)
 *   {<prefix>:<topic>:<partition>}:ckeys            hash: record key -> offset of its last record (compaction)
 *   {<prefix>:<topic>:<partition>}:ctomb            sorted set: record keys whose last record is a tombstone, by timestamp
 *   {<prefix>:group:<group>}:offsets                hash: "<topic>:<partition>" -> committed
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  topics(): string {
    return `${this.prefix}:topics`;
  }
  groups(): string {
    return `${this.prefix}:groups`;
  }
  topic(topic: string): string {
    return `{${this.prefix}:topic:${topic}}`;
  }
  partitionTag(topic: string, partition: number): string {
    return `{${this.prefix}:${topic}:${partition}}`;
  }
  log(topic: string, partition: number): string {
    return `${this.partitionTag(topic, partition)}:log`;
  }
  meta(topic: string, partition: number): string {
    return `${this.partitionTag(topic, partition)}:meta`;
  }
  producers(topic: string, partition: number): string {
    return `${this.partitionTag(topic, partition)}:producers`;
  }
  producersSeen(topic: string, partition: number): string {
    return `${this.partitionTag(topic, partition)}:producers:seen`;
  }
  compactionKeys(topic: string, partition: number): string {
    return `${this.partitionTag(topic, partition)}:ckeys`;
  }
  compactionTombstones(topic: string, partition: number): string {
    return `${this.partitionTag(topic, partition)}:ctomb`;
  }
  notifyChannel(topic: string, partition: number): string {
    return `${this.partitionTag(topic, partition)}:notify`;
  }
  groupOffsets(group: string): string {
    return `{${this.prefix}:group:${group}}:offsets`;
  }
  /** Field of a committed offset inside the group hash (topic names never contain ':'). */
  offsetField(topic: string, partition: number): string {
    return `${topic}:${partition}`;
  }
}
