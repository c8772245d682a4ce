/**
 * Crash test with a real process: a child appends with acks=all and is SIGKILLed mid-write;
 * every batch it reported as acked must be there, with its content, and the partition must
 * recover to a clean tail that accepts appends at the next contiguous offset.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { FileLogEngine } from "../server/src/log/file/file-log-engine.ts";
import type { LogRecord } from "../server/src/log/log-engine.ts";
import { crashRecordValue } from "./fixtures/crash-records.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const writer = path.join(root, "test", "fixtures", "crash-writer.ts");
const dec = new TextDecoder();

interface Ack {
  run: string;
  producer: number;
  seq: number;
  baseOffset: number;
  count: number;
}

/**
 * Runs the writer, kills it once it has printed `killAfterAcks` acks (it keeps writing from
 * 8 producers meanwhile: the kill lands mid-write), returns the acks it printed.
 */
function runAndKill(dataDir: string, run: string, killAfterAcks: number): Promise<{ acks: Ack[]; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=tributary-source", "--import", "tsx", writer, dataDir, run], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let lines = 0; // complete lines: "ready", then one per acked batch
    let killed = false;
    const guard = setTimeout(() => child.kill("SIGKILL"), 30_000); // a deadline: a stuck writer fails the test
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      lines += chunk.split("\n").length - 1;
      if (!killed && lines - 1 >= killAfterAcks) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (chunk) => (err += chunk));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (signal !== "SIGKILL") return reject(new Error(`writer exited with ${code}/${signal} before the kill: ${err}`));
      // only complete lines count: a line cut by the kill is not an ack we can rely on
      const lines = out.split("\n").slice(0, -1);
      const acks = lines
        .filter((l) => l.startsWith("ack "))
        .map((l) => {
          const [, r, producer, seq, base, count] = l.split(" ");
          return { run: r!, producer: Number(producer), seq: Number(seq), baseOffset: Number(base), count: Number(count) };
        });
      resolve({ acks, signal });
    });
  });
}

describe("file engine crash recovery (real SIGKILL)", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-crash-"));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it("every-acks-all-record-survives-sigkill-and-the-partition-recovers-to-a-clean-tail", async () => {
    const allAcks: Ack[] = [];
    for (const [i, killAfterAcks] of [1, 1000, 5000, 15_000].entries()) {
      const run = `run${i}`;
      const { acks } = await runAndKill(dataDir, run, killAfterAcks);
      expect(acks.length).toBeGreaterThan(0);
      allAcks.push(...acks);
      console.log(`${run}: killed after ${killAfterAcks} acks were printed, ${acks.length} batches acked`);

      const engine = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0, segmentBytes: 256 << 10, onWarning: () => undefined });
      try {
        const { earliestOffset, endOffset } = await engine.offsets("crash", 0);
        expect(earliestOffset).toBe(0);
        const maxAcked = Math.max(...allAcks.map((a) => a.baseOffset + a.count));
        expect(endOffset).toBeGreaterThanOrEqual(maxAcked);

        // read the whole partition: offsets contiguous, every record readable (CRC-checked)
        const byOffset = new Map<number, LogRecord>();
        for (let next = 0; next < endOffset; ) {
          const page = await engine.read("crash", 0, next, { maxRecords: 5000 });
          for (const r of page) {
            expect(r.offset).toBe(next);
            byOffset.set(r.offset, r);
            next++;
          }
        }
        expect(byOffset.size).toBe(endOffset);

        // every acked batch, from this run and the earlier ones, is there with its content
        for (const a of allAcks) {
          for (let j = 0; j < a.count; j++) {
            const r = byOffset.get(a.baseOffset + j)!;
            expect(dec.decode(r.value!)).toBe(crashRecordValue(a.run, a.producer, a.seq, j));
            expect(dec.decode(r.key!)).toBe(`p${a.producer}`);
            expect(dec.decode(r.headers["seq"]!)).toBe(String(a.seq));
          }
        }
        // batches of one producer were acked in order with growing offsets
        const mine = acks.filter((a) => a.producer === 0);
        for (let k = 1; k < mine.length; k++) expect(mine[k]!.baseOffset).toBeGreaterThan(mine[k - 1]!.baseOffset);

        // clean tail: the next append lands at the end offset
        const res = await engine.append("crash", 0, [{ key: null, value: new TextEncoder().encode(`after-${run}`) }], { acks: "all" });
        expect(res.baseOffset).toBe(endOffset);
        allAcks.push({ run: "after", producer: -1, seq: -1, baseOffset: res.baseOffset, count: 0 });
      } finally {
        await engine.close();
      }
    }
    expect(allAcks.length).toBeGreaterThan(50);
  });
});
