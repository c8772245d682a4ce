/**
 * `npm run bench -- startup [--runs 7] [--idle 1s]`
 *
 * Start-up of the node, compiled (server/bin/tributary.mjs → server/dist/main.js, what
 * `npm start` runs) vs from the TypeScript sources through tsx (server/bin/tributary-dev.mjs,
 * the way every start ran before the build step: the "before"), in the same run, the two
 * alternating:
 *
 * - exec → listening line: from spawn to `tributary listening …` on stdout (file engine,
 *   fresh data dir, loopback, free ports), and the CPU time the node used until then;
 * - idle RSS: the node's resident set after `--idle` of doing nothing once listening;
 * - `tributary --help`: from spawn to exit.
 *
 * `npm run bench` rebuilds server/dist first when a source changed. Medians over `--runs`,
 * the ratio, the RSS saved, and the issue 12 targets (listening under 300 ms, at least
 * 30 MB less RSS). The source path serves the console's SDK bundle from client-sdk/dist
 * when it is fresh (esbuild in-process otherwise), as before. On a busy machine both
 * paths slow down: compare the two columns of one run, not runs with each other.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { cpuSeconds, parseDuration, waitForLine } from "./bench-process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PATHS = {
  compiled: join(ROOT, "server/bin/tributary.mjs"),
  source: join(ROOT, "server/bin/tributary-dev.mjs"),
} as const;
type PathName = keyof typeof PATHS;

interface Sample {
  listeningMs: number;
  /** CPU time (user + system) the node used up to its listening line: less sensitive to a busy machine than wall time. */
  cpuMs: number;
  rssBytes: number;
  helpMs: number;
}

function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

async function startOnce(bin: string, idleMs: number): Promise<{ listeningMs: number; cpuMs: number; rssBytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), "tributary-bench-startup-"));
  const started = performance.now();
  const child = spawn(process.execPath, [bin, "start", "--data-dir", dir, "--host", "127.0.0.1", "--port", "0", "--mqtt-port", "0", "--log-level", "warn"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForLine(child, /tributary listening http=/, "tributary").catch((err: Error) => {
      throw new Error(`${err.message}\n${stderr}`);
    });
    const listeningMs = performance.now() - started;
    const cpuMs = cpuSeconds(child.pid!) * 1000;
    await new Promise((resolve) => setTimeout(resolve, idleMs)); // idle time before the RSS sample (a bench, not a synchronisation)
    return { listeningMs, cpuMs, rssBytes: rssOf(child.pid!) };
  } finally {
    if (child.exitCode === null) {
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      });
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

async function helpOnce(bin: string): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, [bin, "--help"], { stdio: ["ignore", "ignore", "inherit"] });
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  if (code !== 0) throw new Error(`${bin} --help exited with ${code}`);
  return performance.now() - started;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const mb = (bytes: number) => bytes / (1024 * 1024);

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
  };
  const runs = Number(opt("runs", "7"));
  const idleMs = parseDuration(opt("idle", "1s"));

  const samples: Record<PathName, Sample[]> = { compiled: [], source: [] };
  // Warm-up of both (page cache, tsx's transform cache), not reported.
  for (const name of ["compiled", "source"] as const) await startOnce(PATHS[name], 0);
  process.stdout.write(`${runs} runs each, alternating; idle RSS sampled ${idleMs} ms after the listening line\n`);
  for (let i = 0; i < runs; i++) {
    const order: PathName[] = i % 2 === 0 ? ["compiled", "source"] : ["source", "compiled"];
    for (const name of order) {
      const start = await startOnce(PATHS[name], idleMs);
      samples[name].push({ ...start, helpMs: await helpOnce(PATHS[name]) });
    }
  }

  const row = (label: string, fn: (s: Sample) => number, unit: (v: number) => string) => {
    const c = median(samples.compiled.map(fn));
    const s = median(samples.source.map(fn));
    process.stdout.write(`${label.padEnd(26)} ${unit(s).padStart(16)} ${unit(c).padStart(16)} ${`${(s / c).toFixed(2)}×`.padStart(8)}\n`);
    return { c, s };
  };
  process.stdout.write(`\n${"median".padEnd(26)} ${"before: tsx src".padStart(16)} ${"after: compiled".padStart(16)} ${"ratio".padStart(8)}\n`);
  const listening = row("exec → listening line", (x) => x.listeningMs, (v) => `${v.toFixed(0)} ms`);
  row("  CPU used until then", (x) => x.cpuMs, (v) => `${v.toFixed(0)} ms`);
  const rss = row("idle RSS", (x) => x.rssBytes, (v) => `${mb(v).toFixed(1)} MB`);
  row("tributary --help", (x) => x.helpMs, (v) => `${v.toFixed(0)} ms`);
  const saved = mb(rss.s - rss.c);
  process.stdout.write(
    `\ntarget: listening < 300 ms: ${listening.c.toFixed(0)} ms ${listening.c < 300 ? "OK" : "MISSED"}; ` +
      `RSS at least 30 MB less: ${saved.toFixed(1)} MB less ${saved >= 30 ? "OK" : "MISSED"}\n`,
  );
}
