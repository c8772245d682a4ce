import { describe, expect, it } from "vitest";
import { KafkaPartitioner, murmur2, producerPartition } from "./partitioner.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);

/**
 * Where the vectors come from (all produced by the Java client's
 * org.apache.kafka.common.utils.Utils.murmur2, so a match means a key lands in the same
 * partition as with a Kafka Java producer):
 *
 * - apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
 *   `testMurmur2` (the upstream unit test of Utils.murmur2).
 * - tulios/kafkajs src/producer/partitioners/defaultJava/murmur2.spec.js, "Generated with
 *   src/producer/partitioners/defaultJava/Test.java" (kafkajs' Java-compatible
 *   partitioner; NOT its `legacy` one, kafkajs' pre-2.0 default, whose hashes differ).
 * - lisachenko/kafka-client tests/Unit/Producer/DefaultPartitionerTest.php
 *   (`javaMurmur2Vectors`, `javaPartitionVectors` for 1000 partitions, and
 *   `toPositive(murmur2("user-42")) % 3 == 1`), taken from the kafka-clients jar.
 */
const KAFKA_UTILS_TEST: Array<[string, number]> = [
  ["21", -973932308],
  ["foobar", -790332482],
  ["a-little-bit-long-string", -985981536],
  ["a-little-bit-longer-string", -1486304829],
  ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
  ["abc", 479470107],
];

const KAFKAJS_JAVA_COMPATIBLE: Array<[string, number]> = [
  ["0", 971027396],
  ["1", -1993445489],
  ["128", -326012175],
  ["2187", -1508407203],
  ["16384", -325739742],
  ["78125", -1654490814],
  ["279936", 1462227128],
  ["823543", -2014198330],
  ["2097152", 607668903],
  ["4782969", -1182699775],
  ["10000000", -1830336757],
  ["19487171", -1603849305],
  ["35831808", -857013643],
  ["62748517", -1167431028],
  ["105413504", -381294639],
  ["170859375", -1658323481],
  ["100:48069", 1009543857],
];

const KAFKA_CLIENT_PHP_VECTORS: Array<[string | Uint8Array, number]> = [
  ["", 275646681],
  ["a", -1563381124],
  ["ab", 316155434],
  ["abc", 479470107],
  ["123456789", -1822237082],
  ["hello", 2132663229],
  ["kafka", -798503068],
  ["key-0", 29210041],
  ["key-1", 193331640],
  ["key-2", 852269702],
  ["user-42", 1459644460],
  ["The quick brown fox jumps over the lazy dog", 495243318],
  [new Uint8Array([0x00, 0x20]), 1121897742],
  [Uint8Array.from({ length: 256 }, (_, i) => i), -1948347274],
];

const bytesOf = (k: string | Uint8Array) => (typeof k === "string" ? utf8(k) : k);

describe("murmur2 (Kafka Utils.murmur2 compatible)", () => {
  it.each(KAFKA_UTILS_TEST)("matches Kafka UtilsTest.testMurmur2 for %j", (key, expected) => {
    expect(murmur2(utf8(key))).toBe(expected);
  });

  it.each(KAFKAJS_JAVA_COMPATIBLE)("matches kafkajs' Java-generated vector for %j", (key, expected) => {
    expect(murmur2(utf8(key))).toBe(expected);
  });

  it.each(KAFKA_CLIENT_PHP_VECTORS.map(([k, h]) => [typeof k === "string" ? k : `bytes[${k.length}]`, k, h] as const))(
    "matches the kafka-clients jar vector for %s (every tail length, high bytes, empty key)",
    (_label, key, expected) => {
      expect(murmur2(bytesOf(key))).toBe(expected);
    },
  );

  it("returns a signed 32-bit integer like Java's int", () => {
    for (const [key] of KAFKA_CLIENT_PHP_VECTORS) {
      const h = murmur2(bytesOf(key));
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(-(2 ** 31));
      expect(h).toBeLessThan(2 ** 31);
    }
  });
});

describe("KafkaPartitioner.forKey", () => {
  const partitioner = new KafkaPartitioner();

  it.each([
    ["", 681],
    ["a", 524],
    ["ab", 434],
    ["abc", 107],
    ["123456789", 566],
  ] as const)("puts key %j in the partition the Java client picks among 1000", (key, expected) => {
    expect(partitioner.forKey(utf8(key), 1000)).toBe(expected);
  });

  it("puts a key with a null byte where the Java client does", () => {
    expect(partitioner.forKey(new Uint8Array([0x00, 0x20]), 1000)).toBe(742);
  });

  it("puts user-42 in partition 1 of 3, as the Java client does", () => {
    expect(partitioner.forKey(utf8("user-42"), 3)).toBe(1);
  });

  it("masks the sign bit (toPositive) instead of taking Math.abs, for negative hashes", () => {
    // murmur2("a") = -1563381124; toPositive = & 0x7fffffff = 584102524 (abs would give 1563381124).
    expect(partitioner.forKey(utf8("a"), 2 ** 31 - 1)).toBe(584102524);
    for (const [key, hash] of KAFKA_UTILS_TEST) {
      expect(partitioner.forKey(utf8(key), 7)).toBe((hash & 0x7fffffff) % 7);
    }
  });

  it("is stable: the same key always goes to the same partition", () => {
    const other = new KafkaPartitioner();
    for (let i = 0; i < 100; i++) {
      const key = utf8(`device-${i}`);
      expect(partitioner.forKey(key, 12)).toBe(other.forKey(key, 12));
      expect(partitioner.forKey(key, 12)).toBe(partitioner.forKey(key, 12));
    }
  });

  it("always returns a partition in range", () => {
    for (let n = 1; n <= 17; n++) {
      for (let i = 0; i < 50; i++) {
        const p = partitioner.forKey(utf8(`k${i}`), n);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThan(n);
      }
    }
  });
});

describe("KafkaPartitioner.sticky (null keys)", () => {
  it("moves to the next partition on each request, round-robin, covering every partition evenly", () => {
    const partitioner = new KafkaPartitioner();
    const picks = Array.from({ length: 12 }, () => partitioner.sticky("t", 4));
    for (let i = 1; i < picks.length; i++) expect(picks[i]).toBe((picks[i - 1]! + 1) % 4);
    const counts = [0, 0, 0, 0];
    for (const p of picks) counts[p]!++;
    expect(counts).toEqual([3, 3, 3, 3]);
  });

  it("keeps a separate rotation per topic", () => {
    const partitioner = new KafkaPartitioner();
    const a0 = partitioner.sticky("a", 3);
    const b0 = partitioner.sticky("b", 5);
    const a1 = partitioner.sticky("a", 3);
    const b1 = partitioner.sticky("b", 5);
    expect(a1).toBe((a0 + 1) % 3);
    expect(b1).toBe((b0 + 1) % 5);
  });

  it("stays in range when the partition count shrinks", () => {
    const partitioner = new KafkaPartitioner();
    for (let i = 0; i < 10; i++) partitioner.sticky("t", 10);
    for (let i = 0; i < 10; i++) {
      const p = partitioner.sticky("t", 2);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(2);
    }
  });

  it("returns 0 for a single-partition topic", () => {
    const partitioner = new KafkaPartitioner();
    for (let i = 0; i < 5; i++) expect(partitioner.sticky("t", 1)).toBe(0);
  });
});

describe("producerPartition", () => {
  it("sends a producer's null-keyed requests to one partition per 64 consecutive sequences, the same on every node", () => {
    const parts = Array.from({ length: 64 * 8 }, (_, seq) => producerPartition("producer-a", seq, 12));
    for (let bucket = 0; bucket < 8; bucket++) expect(new Set(parts.slice(bucket * 64, bucket * 64 + 64)).size).toBe(1);
    expect(new Set(parts).size).toBeGreaterThan(1);
    expect(parts).toEqual(Array.from({ length: 64 * 8 }, (_, seq) => producerPartition("producer-a", seq, 12)));
    expect(producerPartition("producer-a", 5, 12)).toBe((murmur2(new TextEncoder().encode("producer-a:0")) & 0x7fffffff) % 12);
  });
});
