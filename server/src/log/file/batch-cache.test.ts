import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { RecordInput } from "../log-engine.ts";
import { encodeBatch, measureBatch, type DecodeSink } from "./batch-codec.ts";
import { BatchCache, SLAB_BYTES } from "./batch-cache.ts";

const NOW = 1_700_000_000_000;

function batch(baseOffset: number, values: number[]): Buffer {
  const records: RecordInput[] = values.map((size, i) => ({ key: (baseOffset + i) % 2 ? Buffer.from(`k${baseOffset + i}`) : null, value: Buffer.alloc(size, (baseOffset + i) % 251), timestamp: NOW + i }));
  return encodeBatch(records, NOW, baseOffset, measureBatch(records, NOW));
}

function readAll(cache: BatchCache, from: number): DecodeSink["records"] {
  const sink: DecodeSink = { records: [], maxRecords: Infinity, maxBytes: Infinity, bytes: 0 };
  cache.read(from, sink);
  return sink.records;
}

describe("BatchCache", () => {
  it("serves-every-offset-from-firstOffset-to-the-end-within-its-byte-bound", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200_000 }),
        fc.array(fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 70_000 })), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 120 }),
        fc.nat(),
        (maxBytes, batches, pick) => {
          const cache = new BatchCache(maxBytes);
          const sizes: number[] = [];
          let largest = 0;
          for (const values of batches) {
            const buf = batch(sizes.length, values);
            largest = Math.max(largest, buf.length);
            cache.add(buf, sizes.length);
            sizes.push(...values);
            // Bounded by the limit, or by the one slab a larger batch needs.
            expect(cache.bytes).toBeLessThanOrEqual(Math.max(maxBytes, largest, Math.min(SLAB_BYTES, maxBytes)));
          }
          const end = sizes.length;
          const first = cache.firstOffset;
          expect(first).toBeLessThan(end); // the newest batch is always there
          const from = first + (pick % (end - first));
          const records = readAll(cache, from);
          expect(records.map((r) => r.offset)).toEqual(Array.from({ length: end - from }, (_, i) => from + i));
          for (const r of records) {
            expect(r.value!.length).toBe(sizes[r.offset]);
            if (r.value!.length > 0) expect(r.value![0]).toBe(r.offset % 251);
            expect(r.key === null ? null : Buffer.from(r.key).toString()).toBe(r.offset % 2 ? `k${r.offset}` : null);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("keeps-one-typed-index-not-an-object-per-batch-and-reuses-it", () => {
    const cache = new BatchCache(1 << 20);
    for (let offset = 0; offset < 50_000; offset++) cache.add(batch(offset, [64]), offset);
    expect(cache.bytes).toBeLessThanOrEqual(1 << 20);
    const first = cache.firstOffset;
    expect(first).toBeGreaterThan(40_000); // ~1 MB of ~100-byte batches kept, the rest dropped oldest first
    expect(readAll(cache, first).length).toBe(50_000 - first);
    expect(readAll(cache, 49_999).map((r) => r.offset)).toEqual([49_999]);
  });

  it("dropBefore-forgets-older-batches-and-their-slabs", () => {
    const cache = new BatchCache(1 << 20);
    for (let offset = 0; offset < 2000; offset++) cache.add(batch(offset, [100]), offset);
    const before = cache.bytes;
    cache.dropBefore(1500);
    expect(cache.firstOffset).toBe(1500);
    expect(cache.bytes).toBeLessThan(before);
    expect(readAll(cache, 1500).length).toBe(500);
    cache.dropBefore(5000);
    expect(cache.firstOffset).toBe(Infinity);
    expect(cache.bytes).toBe(0);
    cache.add(batch(5000, [10]), 5000);
    expect(readAll(cache, 5000).map((r) => r.offset)).toEqual([5000]);
  });

  it("a-zero-limit-caches-nothing", () => {
    const cache = new BatchCache(0);
    cache.add(batch(0, [10]), 0);
    expect(cache.firstOffset).toBe(Infinity);
  });
});
