/**
 * A failed fdatasync (injected through `syncFile`: real devices rarely fail on demand) makes
 * the file engine unhealthy until restart: the acks=all append waiting for it fails with
 * STORAGE_ERROR, the partition refuses further writes, `health()` names the problem and
 * counts the failure, and the warning is logged with task "fsync". Other partitions go on.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isTributaryError } from "../../errors.ts";
import { FileLogEngine } from "./file-log-engine.ts";
import type { SyncFile } from "./segment.ts";

const enc = new TextEncoder();
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return isTributaryError(err) ? err.code : String(err);
  }
}

describe("FileLogEngine storage health", () => {
  it("a-failed-fdatasync-makes-the-engine-unhealthy-refuses-the-partition-and-is-counted", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-health-"));
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    let failing = false;
    const syncFile: SyncFile = (fd, cb) => (failing ? setImmediate(() => cb(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }))) : fs.fdatasync(fd, cb));
    const warnings: Array<{ message: string; context: Record<string, unknown> }> = [];
    const engine = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0, compactionCheckMs: 0, syncFile, onWarning: (message, context) => warnings.push({ message, context }) });
    cleanups.push(() => engine.close().catch(() => undefined)); // close flushes: the failed partition's flush fails again, which is this test's subject, not the cleanup's
    await engine.createTopic("t", { partitions: 2 });
    await engine.append("t", 0, [{ key: null, value: enc.encode("a") }], { acks: "all" });
    expect(engine.health()).toEqual({ ok: true, problem: null, fsyncFailures: 0 });

    failing = true;
    expect(await codeOf(engine.append("t", 0, [{ key: null, value: enc.encode("b") }], { acks: "all" }))).toBe("STORAGE_ERROR");
    const health = engine.health();
    expect(health.ok).toBe(false);
    expect(health.fsyncFailures).toBe(1);
    expect(health.problem).toMatch(/fdatasync of partition t\/0 failed .*EIO/);
    expect(warnings.filter((w) => w.context.task === "fsync")).toHaveLength(1);
    // The partition refuses writes from now on (the state of its unsynced data is unknown).
    expect(await codeOf(engine.append("t", 0, [{ key: null, value: enc.encode("c") }]))).toBe("STORAGE_ERROR");

    failing = false; // the device "recovers": the engine stays unhealthy until restart
    await engine.append("t", 1, [{ key: null, value: enc.encode("d") }], { acks: "all" });
    expect(engine.health().ok).toBe(false);
  });
});
