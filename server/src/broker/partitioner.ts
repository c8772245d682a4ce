/**
 * Chooses a partition for a record, the way Kafka's default partitioner does, so keys
 * land where a Kafka user expects: keyed → `toPositive(murmur2(key)) % partitions`
 * (byte-compatible with org.apache.kafka.common.utils.Utils.murmur2); null key → sticky:
 * every record of one produce request goes to one partition, and the next request moves
 * to the next partition (round-robin over requests).
 */
export interface Partitioner {
  /** Partition for a keyed record. */
  forKey(key: Uint8Array, partitions: number): number;
  /** Partition for the null-keyed records of one produce request. */
  sticky(topic: string, partitions: number): number;
}

/** Kafka's murmur2 (32-bit, seed 0x9747b28c), returning a signed 32-bit int like Java. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = seed ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & ~3;
  switch (length % 4) {
    case 3:
      h ^= data[tail + 2]! << 16;
    // falls through
    case 2:
      h ^= data[tail + 1]! << 8;
    // falls through
    case 1:
      h ^= data[tail]!;
      h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Consecutive sequences of one producer that share a partition (null-keyed records). */
export const PRODUCER_STICKY_SEQUENCES = 64;

const utf8 = new TextEncoder();

/**
 * Partition of a null-keyed request that carries `(producerId, sequence)`: the same on
 * every node, so a retry that lands on another node reaches the partition that holds the
 * producer's state. Sticky-ish: 64 consecutive sequences go to one partition, then the
 * producer moves to `murmur2(producerId + ":" + floor(sequence / 64)) % partitions`.
 */
export function producerPartition(producerId: string, sequence: number, partitions: number): number {
  const bucket = Math.floor(sequence / PRODUCER_STICKY_SEQUENCES);
  return (murmur2(utf8.encode(`${producerId}:${bucket}`)) & 0x7fffffff) % partitions;
}

export class KafkaPartitioner implements Partitioner {
  readonly #sticky = new Map<string, number>();

  forKey(key: Uint8Array, partitions: number): number {
    return (murmur2(key) & 0x7fffffff) % partitions;
  }

  sticky(topic: string, partitions: number): number {
    const previous = this.#sticky.get(topic);
    const next = previous === undefined ? Math.floor(Math.random() * partitions) : (previous + 1) % partitions;
    this.#sticky.set(topic, next);
    return next;
  }
}
