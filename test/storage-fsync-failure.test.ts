/**
 * A failed fdatasync in the file engine takes the node out of service: /readyz answers 503
 * (naming the failure) until restart, the produce that waited for it gets 503
 * STORAGE_ERROR, and tributary_storage_fsync_failures_total counts it. The failure is
 * injected through the engine's `syncFile` seam (a real device does not fail on demand).
 */
import fs from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileLogEngine } from "../server/src/log/file/file-log-engine.ts";
import type { SyncFile } from "../server/src/log/file/segment.ts";
import { createLogger } from "../server/src/logger.ts";
import { startNode } from "../server/src/node.ts";
import { testNodeConfig } from "./helpers/node-config.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("fsync failure and readiness", () => {
  it("a-failed-fdatasync-makes-readyz-503-fails-the-acks-all-produce-and-is-counted", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tributary-fsync-fail-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    let failing = false;
    const syncFile: SyncFile = (fd, cb) => (failing ? setImmediate(() => cb(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }))) : fs.fdatasync(fd, cb));
    const warnings: string[] = [];
    const engine = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0, syncFile, onWarning: (m) => warnings.push(m) });
    const node = await startNode(testNodeConfig(dataDir), { engine, logger: createLogger("error") });
    cleanups.push(() => node.close().catch(() => undefined)); // closing flushes the failed partition again: that failure is this test's subject, not the cleanup's
    const base = `http://127.0.0.1:${node.httpPort}`;
    const fsyncFailures = async (): Promise<number> => {
      const text = await (await fetch(`${base}/metrics`)).text();
      const m = /^tributary_storage_fsync_failures_total (\d+)$/m.exec(text);
      if (!m) throw new Error("tributary_storage_fsync_failures_total is not exported");
      return Number(m[1]);
    };

    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const ok = await fetch(`${base}/topics/orders/records?acks=all`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ value: "first" }) });
    expect(ok.status).toBe(200);
    expect(await fsyncFailures()).toBe(0);
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^tributary_node_ready 1$/m);

    failing = true;
    const failed = await fetch(`${base}/topics/orders/records?acks=all`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ value: "second" }) });
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: { code: string } }).error.code).toBe("STORAGE_ERROR");

    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ error: { code: "UNAVAILABLE", message: expect.stringMatching(/storage failed: fdatasync of partition orders\/\d+ failed/) } });
    expect(await fsyncFailures()).toBe(1);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^tributary_node_ready 0$/m); // the TributaryNodeUnready alert's input
    expect(metrics).toMatch(/^tributary_storage_healthy 0$/m);
    expect(warnings.some((w) => w.startsWith("fdatasync of partition orders/"))).toBe(true);

    failing = false; // the device answers again: still not ready (the state of the unsynced data is unknown) until a restart
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    expect((await fetch(`${base}/healthz`)).status).toBe(200); // alive, just not ready
  });
});
