/**
 * A compacted topic through the delivery path (broker feeds, WebSocket, SDK): after
 * compaction an SDK subscriber from "earliest" gets the last value of every key with
 * increasing offsets across the gaps, then live records; a group-less reader resumes from a
 * position inside a removed range; a keyless SDK publish is refused with POLICY_VIOLATION.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, type Message, type TributaryClient } from "@tributary/client";
import type { FileLogEngine } from "../server/src/log/file/file-log-engine.ts";
import { startSdkTestNode, type SdkTestNode } from "./helpers/sdk-node.ts";
import { waitFor } from "./helpers/wait.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(): Promise<SdkTestNode> {
  const n = await startSdkTestNode({ file: { segmentBytes: 4096 } }); // small segments: most of the log is sealed and compactable
  cleanups.push(() => n.close());
  return n;
}

function client(n: SdkTestNode): TributaryClient {
  const c = connect(n.url, { minReconnectDelay: 10, maxReconnectDelay: 100 });
  cleanups.push(() => c.close());
  return c;
}

describe("compacted topics through the SDK", () => {
  it("a-subscriber-from-earliest-gets-the-last-value-per-key-across-the-gaps-then-live-records", async () => {
    const n = await node();
    await n.node.broker.createTopic("prices", { partitions: 1, cleanupPolicy: "compact", retentionMs: null });
    const writer = client(n);
    for (let round = 0; round < 30; round++) {
      await Promise.all(Array.from({ length: 20 }, (_, k) => writer.publish("prices", { round, k, pad: "p".repeat(60) }, { key: `sym-${k}` })));
    }
    const stats = await (n.node.engine as FileLogEngine).compact("prices", { force: true });
    expect(stats.recordsRemoved).toBeGreaterThan(400);

    const got: Message[] = [];
    const reader = client(n);
    reader.subscribe("prices", (m) => void got.push(m), { from: "earliest" });
    const end = (await n.node.broker.offsets("prices", 0)).endOffset;
    await waitFor(() => got.some((m) => m.offset === end - 1), { what: "the subscriber to reach the end of the compacted log" });
    const offsets = got.map((m) => m.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(new Set(offsets).size).toBe(offsets.length);
    expect(got.length).toBeLessThan(200);
    const last = new Map<string, number>();
    for (const m of got) last.set(String(m.key), (m.value as { round: number }).round);
    expect(last.size).toBe(20);
    for (const round of last.values()) expect(round).toBe(29);

    const live = await writer.publish("prices", { round: 30, k: 0 }, { key: "sym-0" });
    await waitFor(() => got.some((m) => m.offset === live.offset), { what: "the live record after the compacted history" });

    // A subscription resumed at an offset compaction removed starts with the next record kept.
    const removed = Array.from({ length: end }, (_, o) => o).find((o) => !offsets.includes(o))!;
    const resumed: Message[] = [];
    const again = client(n);
    again.subscribe("prices", (m) => void resumed.push(m), { from: { offsets: { 0: removed } } });
    await waitFor(() => resumed.length > 0, { what: "the resumed subscription's first record" });
    expect(resumed[0]!.offset).toBe(offsets.find((o) => o > removed));
  });

  it("a-keyless-publish-to-a-compacted-topic-is-refused-with-POLICY_VIOLATION", async () => {
    const n = await node();
    await n.node.broker.createTopic("kv", { partitions: 1, cleanupPolicy: "compact" });
    const writer = client(n);
    await expect(writer.publish("kv", "no key")).rejects.toMatchObject({ code: "POLICY_VIOLATION" });
    const ok = await writer.publish("kv", "keyed", { key: "a" });
    expect(ok.offset).toBe(0);
  });
});
