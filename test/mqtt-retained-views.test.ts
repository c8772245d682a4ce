import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Broker } from "../server/src/broker/broker.ts";
import { TopicFilter } from "../server/src/broker/topic-filter.ts";
import { FileLogEngine } from "../server/src/log/file/file-log-engine.ts";
import { RetainedStore } from "../server/src/gateway/mqtt/retained-store.ts";

describe("RetainedStore", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("keeps-an-exact-size-copy-of-a-payload-that-is-a-view-into-a-larger-buffer", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tributary-retained-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const engine = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0 });
    cleanups.push(() => engine.close());
    const store = new RetainedStore(new Broker(engine, { autoCreateTopics: true, topicDefaults: {}, maxRecordBytes: 1 << 20 }));
    await store.load();
    // A PUBLISH payload as the MQTT gateway gets it: 5 bytes inside a 64 KB socket read.
    const read = Buffer.alloc(65536, 7);
    read.write("hello", 1000);
    await store.put("home/kitchen/temp", read.subarray(1000, 1005), {});
    read.write("XXXXX", 1000); // the read buffer is reused
    const [msg] = [...store.matching(new TopicFilter("home/#"))];
    expect(Buffer.from(msg!.payload).toString()).toBe("hello");
    expect(msg!.payload.buffer.byteLength).toBe(5);
    expect(store.bytes).toBe("home/kitchen/temp".length + 5);
    // A payload that owns its buffer is kept as it is.
    const own = new Uint8Array([1, 2, 3]);
    await store.put("home/hall/temp", own, {});
    const hall = [...store.matching(new TopicFilter("home/hall/temp"))][0]!;
    expect(hall.payload).toBe(own);
  });
});
