/**
 * Crash safety of compaction with a real process: a child writes acks=all rounds to a
 * compacted topic and compacts while writing; it is SIGKILLed at a random point (mid-write,
 * mid-pass, between the swap's renames). On reopen: no temp or swap file is left, every key
 * has a value, all keys have the same newest round (a round is one atomic batch), that round
 * is the last acked one or the one after it, offsets increase, and a second crash run on
 * the recovered directory goes on from there.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { FileLogEngine } from "../server/src/log/file/file-log-engine.ts";
import { readAllGapSafe } from "./contract/log-engine-compaction-contract.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const writer = path.join(root, "test", "fixtures", "compaction-crash-writer.ts");
const dec = new TextDecoder();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs the writer until it printed `passes` compactions plus a random number of acks, then SIGKILLs it; returns the last acked round. */
function runAndKill(dataDir: string, passes: number, extraAcks: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=tributary-source", "--import", "tsx", writer, dataDir], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let compacted = 0;
    let acksAfter = 0;
    let lastAck = -1;
    let killed = false;
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000); // a deadline: a stuck writer fails the test below
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      const lines = out.split("\n");
      out = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith("acked ")) {
          lastAck = Number(line.slice(6));
          if (compacted >= passes) acksAfter++;
        } else if (line.startsWith("compacted ")) compacted++;
      }
      if (!killed && compacted >= passes && acksAfter >= extraAcks) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (c) => (err += c));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (signal !== "SIGKILL" || !killed) return reject(new Error(`writer ended with ${code}/${signal} before the kill: ${err}`));
      resolve(lastAck);
    });
  });
}

async function check(dataDir: string, lastAck: number): Promise<number> {
  const engine = await FileLogEngine.open({ dataDir, fsync: "never", segmentBytes: 8 << 10, retentionCheckMs: 0, compactionCheckMs: 0, onWarning: () => undefined });
  try {
    const pdir = path.join(dataDir, "topics", "state", "0");
    expect(fs.readdirSync(pdir).filter((f) => f.endsWith(".cleaned") || f.endsWith(".swap"))).toEqual([]);
    const records = await readAllGapSafe(engine, "state", 0, 0);
    const offsets = records.map((r) => r.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    const newest = new Map<string, number>();
    for (const r of records) newest.set(dec.decode(r.key!), Number(dec.decode(r.value!).split(":")[0]));
    expect(newest.size).toBe(50);
    const rounds = new Set(newest.values());
    expect(rounds.size).toBe(1);
    const round = [...rounds][0]!;
    expect([lastAck, lastAck + 1]).toContain(round);
    // Compaction did its job: far fewer records than writes.
    expect(records.length).toBeLessThan(((round + 1) * 50) / 2);
    return round;
  } finally {
    await engine.close();
  }
}

describe("compaction crash safety (real process, SIGKILL)", () => {
  it("sigkill-during-writes-and-compaction-keeps-every-acked-round-and-leaves-no-temp-files", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-compaction-crash-"));
    dirs.push(dataDir);
    for (let run = 0; run < 3; run++) {
      const lastAck = await runAndKill(dataDir, 2 + run, Math.floor(Math.random() * 7));
      await check(dataDir, lastAck);
    }
  }, 120_000);
});
