/**
 * Log benchmark: FileLogEngine throughput beside the machine's ceiling, in one run, on a
 * temp dir of the same disk.
 *
 *   npm run bench -- log [--dir <parent dir>] [--quick]
 *   node --conditions=tributary-source --import tsx test/bench/log.ts [--dir ...] [--quick]
 *
 * Measures
 * - acks=1 appends of 100-byte records, 1000 per batch (records/s, MB/s)
 * - acks=1 appends of 64 KiB records, 16 per batch (MB/s) vs fio sequential write MB/s
 *   (both include the final fsync: fio --end_fsync=1, the engine's flush())
 * - acks="all" from 100 concurrent producers, 20 records per batch: records/s through group
 *   commit, fsyncs done, vs fio fsyncs/s (4 KiB writes, fsync after each)
 * - sequential reads of the 100-byte records from the segment files (fresh engine, warm
 *   page cache) and tail reads served from the in-memory batch cache
 * and prints a table with the ratios. fio comes from the Debian package `fio`.
 */
import { execFileSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { FileLogEngine } from "../../server/src/log/file/file-log-engine.ts";
import type { RecordInput } from "../../server/src/log/log-engine.ts";

interface Row {
  name: string;
  value: string;
  ceiling: string;
  ratio: string;
  target: string;
}

const MB = 1e6;

function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function fio(dir: string, args: string[]): { bwBytes: number; iops: number } | null {
  try {
    const out = execFileSync("fio", ["--output-format=json", `--directory=${dir}`, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const job = JSON.parse(out.slice(out.indexOf("{"))).jobs[0].write;
    return { bwBytes: job.bw_bytes ?? job.bw * 1024, iops: job.iops };
  } catch (err) {
    console.error(`fio failed or is missing (apt-get install -y fio): ${(err as Error).message.split("\n")[0]}`);
    return null;
  } finally {
    for (const f of fs.readdirSync(dir)) if (f.startsWith("tributary-fio")) fs.rmSync(path.join(dir, f), { force: true });
  }
}

function makeBatch(count: number, valueBytes: number): RecordInput[] {
  const pool = Buffer.allocUnsafe(count * valueBytes);
  randomFillSync(pool);
  return Array.from({ length: count }, (_, i) => ({ key: null, value: pool.subarray(i * valueBytes, (i + 1) * valueBytes) }));
}

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  const t0 = process.hrtime.bigint();
  const result = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, result };
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes("--quick");
  const dirArg = args.indexOf("--dir");
  const parent = dirArg >= 0 && args[dirArg + 1] ? args[dirArg + 1]! : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(parent, "tributary-bench-log-"));
  const scale = quick ? 0.2 : 1;
  const rows: Row[] = [];
  console.log(`log bench in ${dir} (node ${process.version}, ${os.cpus().length} CPUs)${quick ? " --quick" : ""}`);
  try {
    // --- machine ceiling ------------------------------------------------------------------
    const fioSize = quick ? "256M" : "1G";
    const seq = fio(dir, ["--name=tributary-fio-seq", "--rw=write", "--bs=1M", `--size=${fioSize}`, "--direct=0", "--end_fsync=1"]);
    const fsyncs = fio(dir, ["--name=tributary-fio-fsync", "--rw=write", "--bs=4k", "--fsync=1", "--size=64M", "--runtime=3", "--time_based"]);
    const seqMBs = seq ? seq.bwBytes / MB : NaN;
    const fsyncPerSec = fsyncs ? fsyncs.iops : NaN;
    console.log(`fio: sequential write ${fmt(seqMBs)} MB/s (1 MiB blocks, ${fioSize}, end fsync); ${fmt(fsyncPerSec)} fsyncs/s (4 KiB write + fsync)`);

    // --- 1. small records, acks=1 ---------------------------------------------------------
    const dataDir = path.join(dir, "data");
    let engine = await FileLogEngine.open({ dataDir, retentionCheckMs: 0 });
    await engine.createTopic("small", { retentionMs: null });
    const small = Array.from({ length: 8 }, () => makeBatch(1000, 100));
    const smallBatches = Math.round(3000 * scale);
    const s1 = await timed(async () => {
      for (let i = 0; i < smallBatches; i++) await engine.append("small", 0, small[i & 7]!, { acks: 1 });
      await engine.flush();
    });
    const smallRecords = smallBatches * 1000;
    const smallRate = smallRecords / s1.seconds;
    const smallMBs = (smallRecords * 100) / MB / s1.seconds;
    rows.push({
      name: "append 100 B records, 1000/batch, acks=1",
      value: `${fmt(smallRate)} rec/s (${fmt(smallMBs)} MB/s payload)`,
      ceiling: `${fmt(seqMBs)} MB/s`,
      ratio: `${fmt((smallMBs / seqMBs) * 100)}% of disk`,
      target: `>= 1,000,000 rec/s: ${smallRate >= 1e6 ? "met" : "MISSED"}`,
    });

    // --- 2. large records, acks=1 ---------------------------------------------------------
    await engine.createTopic("large", { retentionMs: null });
    const large = [makeBatch(16, 64 << 10), makeBatch(16, 64 << 10)];
    const largeBatches = Math.round(1024 * scale); // 1 MiB each
    const s2 = await timed(async () => {
      for (let i = 0; i < largeBatches; i++) await engine.append("large", 0, large[i & 1]!, { acks: 1 });
      await engine.flush();
    });
    const largeMBs = (largeBatches * 16 * (64 << 10)) / MB / s2.seconds;
    rows.push({
      name: "append 64 KiB records, 16/batch, acks=1",
      value: `${fmt(largeMBs)} MB/s`,
      ceiling: `${fmt(seqMBs)} MB/s`,
      ratio: `${fmt((largeMBs / seqMBs) * 100)}%`,
      target: `>= 50%: ${largeMBs / seqMBs >= 0.5 ? "met" : "MISSED"}`,
    });

    // --- 3. acks=all, 100 concurrent producers ----------------------------------------------
    await engine.createTopic("durable", { retentionMs: null });
    const durable = Array.from({ length: 100 }, () => makeBatch(20, 100));
    const fsyncsBefore = engine.stats().fsyncs;
    const durationMs = quick ? 1000 : 3000;
    let durableRecords = 0;
    const s3 = await timed(async () => {
      const stopAt = Date.now() + durationMs;
      await Promise.all(
        durable.map(async (batch) => {
          while (Date.now() < stopAt) {
            await engine.append("durable", 0, batch, { acks: "all" });
            durableRecords += batch.length;
          }
        }),
      );
    });
    const fsyncsDone = engine.stats().fsyncs - fsyncsBefore;
    const durableRate = durableRecords / s3.seconds;
    rows.push({
      name: "append acks=all, 100 producers x 20 rec",
      value: `${fmt(durableRate)} rec/s; ${fmt(fsyncsDone)} fsyncs (${fmt(fsyncsDone / s3.seconds)}/s, ${fmt(durableRecords / fsyncsDone)} rec/fsync)`,
      ceiling: `${fmt(fsyncPerSec)} fsyncs/s`,
      ratio: `${fmt((fsyncsDone / s3.seconds / fsyncPerSec) * 100)}% of fsync rate`,
      target: `>= 200,000 rec/s: ${durableRate >= 2e5 ? "met" : "MISSED"}`,
    });

    // --- 4. reads ---------------------------------------------------------------------------
    // tail reads: the records just appended, served by the batch cache (1 MiB of the tail)
    const { endOffset: smallEnd } = await engine.offsets("small", 0);
    const cacheFrom = smallEnd - 9_000; // within the 1 MiB cache
    const s4a = await timed(async () => {
      let n = 0;
      for (let round = 0; round < 60; round++) {
        for (let next = cacheFrom; next < smallEnd; ) {
          const page = await engine.read("small", 0, next, { maxRecords: 1000 });
          n += page.length;
          next = page[page.length - 1]!.offset + 1;
        }
      }
      return n;
    });
    await engine.close();
    // sequential reads from the segment files, with a fresh engine (no cache)
    engine = await FileLogEngine.open({ dataDir, retentionCheckMs: 0 });
    const s4 = await timed(async () => {
      let n = 0;
      let bytes = 0;
      for (let next = 0; next < smallEnd; ) {
        const page = await engine.read("small", 0, next, { maxRecords: 10_000 });
        n += page.length;
        for (const r of page) bytes += r.value!.length;
        next = page[page.length - 1]!.offset + 1;
      }
      return { n, bytes };
    });
    const readRate = s4.result.n / s4.seconds;
    rows.push({
      name: "sequential read 100 B records (files)",
      value: `${fmt(readRate)} rec/s (${fmt(s4.result.bytes / MB / s4.seconds)} MB/s)`,
      ceiling: "page cache",
      ratio: "",
      target: `>= 2,000,000 rec/s: ${readRate >= 2e6 ? "met" : "MISSED"}`,
    });
    rows.push({
      name: "tail read 100 B records (batch cache)",
      value: `${fmt(s4a.result / s4a.seconds)} rec/s`,
      ceiling: "memory",
      ratio: "",
      target: "",
    });
    await engine.close();

    // --- table -------------------------------------------------------------------------------
    const cols: (keyof Row)[] = ["name", "value", "ceiling", "ratio", "target"];
    const head: Row = { name: "benchmark", value: "measured", ceiling: "ceiling (fio)", ratio: "ratio", target: "target" };
    const widths = cols.map((c) => Math.max(head[c].length, ...rows.map((r) => r[c].length)));
    const line = (r: Row): string => cols.map((c, i) => r[c].padEnd(widths[i]!)).join(" | ");
    console.log("");
    console.log(line(head));
    console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
    for (const r of rows) console.log(line(r));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
