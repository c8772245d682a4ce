/**
 * The compaction part of the LogEngine contract (cleanupPolicy "compact"): every engine runs
 * it, with the same factory contract as `runLogEngineContract`. The factory's engine must
 * roll its storage often enough that ~400 KB of records leave a compactable part (file: a
 * small `segmentBytes`; Redis compacts the whole stream but its last record).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isTributaryError, type ErrorCode } from "../../server/src/errors.ts";
import type { LogEngine, LogRecord, RecordInput } from "../../server/src/log/log-engine.ts";
import { waitFor } from "../helpers/wait.ts";
import type { ContractEngine } from "./log-engine-contract.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (b: Uint8Array | null): string | null => (b === null ? null : dec.decode(b));

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<Error> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  if (!isTributaryError(err, code)) throw new Error(`expected TributaryError ${code}, got ${String((err as Error)?.stack ?? err)}`);
  return err;
}

/** Every record from `from` to the end, page by page, continuing after the last offset read (gap-safe). */
export async function readAllGapSafe(engine: LogEngine, topic: string, partition: number, from = 0): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  const { endOffset } = await engine.offsets(topic, partition);
  let next = from;
  while (next < endOffset) {
    const page = await engine.read(topic, partition, next, { maxRecords: 500 });
    if (page.length === 0) break;
    for (const r of page) expect(r.offset).toBeGreaterThanOrEqual(next);
    out.push(...page);
    next = page[page.length - 1]!.offset + 1;
  }
  return out;
}

/** `rounds` writes of each of `keys` keys, a batch per round; value "<round>:<key>" padded to `valueBytes`. Returns the offset of every (round, key). */
async function writeRounds(engine: LogEngine, topic: string, keys: number, rounds: number, keyPrefix = "key", valueBytes = 300): Promise<number[][]> {
  const offsets: number[][] = [];
  for (let round = 0; round < rounds; round++) {
    const records: RecordInput[] = [];
    for (let k = 0; k < keys; k++) {
      const head = `${round}:${keyPrefix}-${k}:`;
      records.push({ key: enc.encode(`${keyPrefix}-${k}`), value: enc.encode(head.padEnd(valueBytes, "x")) });
    }
    const { baseOffset } = await engine.append(topic, 0, records);
    offsets.push(records.map((_, i) => baseOffset + i));
  }
  return offsets;
}

export function runCompactionContract(name: string, makeEngine: () => Promise<ContractEngine>): void {
  describe(`LogEngine compaction contract: ${name}`, () => {
    let ctx: ContractEngine | undefined;
    let engine: LogEngine;
    let n = 0;
    const topicName = (): string => `compact-${Date.now().toString(36)}-${n++}`;

    beforeEach(async () => {
      ctx = await makeEngine();
      engine = ctx.engine;
    });
    afterEach(async () => {
      const current = ctx;
      ctx = undefined;
      await current?.cleanup();
    });

    it("compact-topic-config-is-accepted-validated-and-described", async () => {
      const t = topicName();
      const d = await engine.createTopic(t, { cleanupPolicy: "compact", deleteRetentionMs: 5000, minCleanableDirtyRatio: 0.25 });
      expect(d).toMatchObject({ cleanupPolicy: "compact", deleteRetentionMs: 5000, minCleanableDirtyRatio: 0.25, retentionMs: 7 * 24 * 3600 * 1000 });
      expect(await engine.describeTopic(t)).toEqual(d);
      const both = await engine.createTopic(topicName(), { cleanupPolicy: "delete,compact" as never });
      expect(both.cleanupPolicy).toBe("compact,delete");
      const plain = await engine.createTopic(topicName(), {});
      expect(plain).toMatchObject({ cleanupPolicy: "delete", deleteRetentionMs: 86_400_000, minCleanableDirtyRatio: 0.5, segmentBytes: null });
      const sized = topicName();
      expect(await engine.createTopic(sized, { segmentBytes: 4096 })).toMatchObject({ segmentBytes: 4096 });
      expect(await engine.alterTopicConfig(sized, { segmentBytes: 8192, minCleanableDirtyRatio: 0.1 })).toMatchObject({ segmentBytes: 8192, minCleanableDirtyRatio: 0.1 });
      expect(await engine.describeTopic(sized)).toMatchObject({ segmentBytes: 8192, minCleanableDirtyRatio: 0.1 });
      await expectCode(engine.createTopic(topicName(), { segmentBytes: 100 }), "INVALID_CONFIG");
      await expectCode(engine.alterTopicConfig(sized, { segmentBytes: 2 ** 31 }), "INVALID_CONFIG");
      await expectCode(engine.createTopic(topicName(), { cleanupPolicy: "shrink" as never }), "INVALID_CONFIG");
      await expectCode(engine.createTopic(topicName(), { cleanupPolicy: "compact", deleteRetentionMs: -1 }), "INVALID_CONFIG");
      await expectCode(engine.createTopic(topicName(), { cleanupPolicy: "compact", minCleanableDirtyRatio: 1.5 }), "INVALID_CONFIG");
    });

    it("keyless-records-are-refused-by-a-compacted-topic-with-POLICY_VIOLATION", async () => {
      const t = topicName();
      await engine.createTopic(t, { cleanupPolicy: "compact" });
      const err = await expectCode(engine.append(t, 0, [{ key: enc.encode("a"), value: enc.encode("1") }, { key: null, value: enc.encode("2") }]), "POLICY_VIOLATION");
      expect(err.message).toMatch(/compacted.*key/);
      expect((await engine.offsets(t, 0)).endOffset).toBe(0); // nothing of the batch was written
      await engine.append(t, 0, [{ key: enc.encode("a"), value: null }]); // a tombstone is fine
    });

    it("compaction-keeps-the-last-record-per-key-with-offsets-unchanged", async () => {
      const t = topicName();
      await engine.createTopic(t, { cleanupPolicy: "compact", retentionMs: null });
      const keys = 40;
      const rounds = 40; // 1,600 records of ~330 bytes: ~520 KB
      const offsets = await writeRounds(engine, t, keys, rounds);
      const before = await engine.offsets(t, 0);
      const stats = await engine.compact(t, { force: true });
      expect(stats.partitionsCleaned).toBe(1);
      expect(stats.recordsRemoved).toBeGreaterThan(keys * rounds * 0.8);
      expect(stats.bytesAfter).toBeLessThan(stats.bytesBefore);

      const after = await engine.offsets(t, 0);
      expect(after.endOffset).toBe(before.endOffset);
      expect(after.earliestOffset).toBe(0);
      const records = await readAllGapSafe(engine, t, 0, 0);
      // Each record is the one written at its offset; the newest value of every key is there.
      const byOffset = new Map<number, string>();
      offsets.forEach((row, round) => row.forEach((o, k) => byOffset.set(o, `${round}:key-${k}:`)));
      for (const r of records) expect(text(r.value)!.startsWith(byOffset.get(r.offset)!)).toBe(true);
      const last = new Map<string, string>();
      for (const r of records) last.set(text(r.key)!, text(r.value)!.split(":")[0]!);
      expect(last.size).toBe(keys);
      for (const round of last.values()) expect(round).toBe(String(rounds - 1));
      expect(records.length).toBeLessThan(keys * rounds * 0.2);

      // A read at a removed offset returns the next record that is kept.
      const kept = new Set(records.map((r) => r.offset));
      const removed = offsets[0]![0]!;
      expect(kept.has(removed)).toBe(false);
      const next = records.find((r) => r.offset > removed)!;
      expect((await engine.read(t, 0, removed, { maxRecords: 1 }))[0]!.offset).toBe(next.offset);

      // A tail from 0 delivers the kept records, then live ones.
      const seen: LogRecord[] = [];
      let failure: Error | null = null;
      const tail = engine.tail(t, 0, 0, { onRecords: (rs) => void seen.push(...rs), onError: (e) => (failure = e) });
      try {
        const { baseOffset } = await engine.append(t, 0, [{ key: enc.encode("key-0"), value: enc.encode("live") }]);
        await waitFor(() => seen.some((r) => r.offset === baseOffset) || failure !== null, { what: "the tail to deliver the live record" });
        expect(failure).toBeNull();
        expect(seen.map((r) => r.offset)).toEqual([...records.map((r) => r.offset), baseOffset]);
      } finally {
        tail.close();
      }
    });

    it("tombstones-stay-for-deleteRetentionMs-then-go", async () => {
      const t = topicName();
      await engine.createTopic(t, { cleanupPolicy: "compact", retentionMs: null, deleteRetentionMs: 60_000 });
      await writeRounds(engine, t, 20, 2);
      const now = Date.now();
      await engine.append(t, 0, [
        { key: enc.encode("key-1"), value: null, timestamp: now },
        { key: enc.encode("key-2"), value: null, timestamp: now },
      ]);
      await writeRounds(engine, t, 20, 60); // key-1 and key-2 live again
      await engine.append(t, 0, [{ key: enc.encode("key-1"), value: null, timestamp: now }, { key: enc.encode("key-2"), value: null, timestamp: now }]);
      await writeRounds(engine, t, 5, 100, "pad"); // other keys after the tombstones: they leave the newest part
      // The last writes of key-1 and key-2 are tombstones; key-0's last record came before them.
      const last = async (): Promise<Map<string, LogRecord>> => {
        const m = new Map<string, LogRecord>();
        for (const r of await readAllGapSafe(engine, t, 0)) m.set(text(r.key)!, r);
        return m;
      };
      await engine.compact(t, { force: true, now });
      let state = await last();
      expect(state.get("key-1")?.value).toBeNull(); // within deleteRetentionMs: kept
      expect(state.get("key-2")?.value).toBeNull();

      // Far enough in the future that the tombstones expire (the file engine keeps the active segment: roll it with more writes).
      await writeRounds(engine, t, 5, 300, "pad");
      const stats = await engine.compact(t, { force: true, now: now + 120_000 });
      expect(stats.tombstonesRemoved).toBeGreaterThanOrEqual(2);
      state = await last();
      expect(state.has("key-1")).toBe(false);
      expect(state.has("key-2")).toBe(false);
      expect(state.has("key-3")).toBe(true);
    });

    it("compact-only-topics-ignore-time-and-size-retention-and-compact-delete-applies-both", async () => {
      const compactOnly = topicName();
      const both = topicName();
      await engine.createTopic(compactOnly, { cleanupPolicy: "compact", retentionMs: 60_000, retentionBytes: 10_000 });
      await engine.createTopic(both, { cleanupPolicy: "compact,delete", retentionMs: 60_000, retentionBytes: 10_000 });
      const old = Date.now() - 3_600_000;
      for (const t of [compactOnly, both]) {
        for (let round = 0; round < 4; round++) {
          await engine.append(t, 0, Array.from({ length: 100 }, (_, k) => ({ key: enc.encode(`k${round}-${k}`), value: enc.encode("x".repeat(300)), timestamp: old })));
        }
        await engine.append(t, 0, [{ key: enc.encode("fresh"), value: enc.encode("now") }]);
      }
      const retention = (engine as unknown as { enforceRetention?: () => Promise<unknown> }).enforceRetention;
      expect(typeof retention).toBe("function");
      await retention!.call(engine);
      const kept = await engine.offsets(compactOnly, 0);
      expect(kept.earliestOffset).toBe(0);
      expect((await readAllGapSafe(engine, compactOnly, 0)).length).toBe(401);
      expect((await engine.offsets(both, 0)).earliestOffset).toBeGreaterThan(0);
    });

    it("a-delete-topic-switched-to-compact-is-compacted-and-then-refuses-keyless-records", async () => {
      const t = topicName();
      await engine.createTopic(t, { cleanupPolicy: "delete", retentionMs: null });
      await engine.append(t, 0, [{ key: null, value: enc.encode("keyless") }]);
      await writeRounds(engine, t, 10, 120);
      expect((await engine.compact(t, { force: true })).partitionsCleaned).toBe(0); // not compacted: nothing happens
      const d = await engine.alterTopicConfig(t, { cleanupPolicy: "compact", deleteRetentionMs: 1000 });
      expect(d).toMatchObject({ cleanupPolicy: "compact", deleteRetentionMs: 1000, partitions: 1 });
      expect(await engine.describeTopic(t)).toMatchObject({ cleanupPolicy: "compact", deleteRetentionMs: 1000 });
      await expectCode(engine.append(t, 0, [{ key: null, value: enc.encode("x") }]), "POLICY_VIOLATION");
      await expectCode(engine.alterTopicConfig(t, { partitions: 3 } as never), "POLICY_VIOLATION");
      await expectCode(engine.alterTopicConfig(topicName(), { cleanupPolicy: "compact" }), "UNKNOWN_TOPIC");
      await engine.compact(t, { force: true });
      const records = await readAllGapSafe(engine, t, 0);
      expect(records.some((r) => r.key === null)).toBe(false); // the keyless record from before is gone
      expect(new Set(records.map((r) => text(r.key))).size).toBe(10);
    });
  });
}
