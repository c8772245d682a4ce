/**
 * Shared by the benches: start a `tributary start` process on free ports and stop it,
 * and read a process's CPU time; every bench imports these.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface TributaryProc {
  httpPort: number;
  mqttPort: number;
  pid: number;
  stop(): Promise<void>;
}

/** `--duration 5s` / `500ms` / `5` (seconds) → ms. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(s);
  if (!m) throw new Error(`bad duration "${s}"`);
  return m[2] === "ms" ? Number(m[1]) : Number(m[1]) * 1000;
}

export function waitForLine(child: ChildProcess, re: RegExp, what: string, timeoutMs = 20_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = "";
    const t = setTimeout(() => reject(new Error(`${what} did not start: ${out}`)), timeoutMs);
    child.stdout!.on("data", (d) => {
      out += d;
      const m = re.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    });
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}: ${out}`)));
  });
}

/**
 * Starts `tributary start` (file engine, fsync never unless `flags` has `--fsync`, loopback,
 * free ports) with extra flags (and Node flags before the script, e.g. `--cpu-prof`);
 * resolves once it listens.
 */
export async function startTributary(flags: string[] = [], nodeArgs: string[] = []): Promise<TributaryProc> {
  const dir = mkdtempSync(join(tmpdir(), "tributary-bench-"));
  const child = spawnServer(
    process.execPath,
    [...nodeArgs, join(ROOT, "server/bin/tributary.mjs"), "start", "--data-dir", dir, "--host", "127.0.0.1", "--port", "0", "--mqtt-port", "0", ...(flags.includes("--fsync") ? [] : ["--fsync", "never"]), "--log-level", "warn", ...flags],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const m = await waitForLine(child, /http=[^:\s]+:(\d+) mqtt=[^:\s]+:(\d+)/, "tributary");
  return {
    httpPort: Number(m[1]),
    mqttPort: Number(m[2]),
    pid: child.pid!,
    async stop() {
      await stopper(child)();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The CPUs servers started by spawnServer run on, once pinCpus has run. */
let serverCpus: string | null = null;

/**
 * Pins this process (the loader) to CPUs 1… and every server spawnServer starts from now on to
 * CPU 0 (Linux, 2+ CPUs; `taskset` from util-linux). On a 2-core machine a loader and a server
 * left to the scheduler share both cores, and which of them gets preempted by the other (and by
 * their own GC threads) moved one 2 s window's msgs/s by ±15% against the next; pinned, the
 * same windows move by about ±5%. Returns what it did, for the bench's header.
 */
export function pinCpus(): string {
  const cpus = availableParallelism();
  if (process.platform !== "linux" || cpus < 2) return "not pinned (needs Linux and 2+ CPUs)";
  const loader = cpus === 2 ? "1" : `1-${cpus - 1}`;
  execFileSync("taskset", ["-a", "-p", "-c", loader, String(process.pid)], { stdio: "ignore" });
  serverCpus = "0";
  return `servers pinned to CPU 0, loader to CPU ${loader}`;
}

/** `spawn`, on the servers' CPUs once pinCpus has run (taskset execs the command: the pid is the server's). */
export function spawnServer(command: string, args: string[], options: SpawnOptions): ChildProcess {
  return serverCpus === null ? spawn(command, args, options) : spawn("taskset", ["-c", serverCpus, command, ...args], options);
}

/** Stops `child` (SIGTERM, SIGKILL after 5 s); resolves once it exited. */
export function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5000).unref();
    });
}

/**
 * CPU time process `pid` has run so far, in µs at nanosecond resolution: the sum over its
 * threads of /proc/<pid>/task/<tid>/schedstat's run time (Linux). /proc/<pid>/stat counts in
 * 10 ms ticks, too coarse for 1 s windows.
 */
export function cpuMicros(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended between the listing and the read: its time is gone with it
    }
  }
  return ns / 1000;
}

/** CPU seconds (user + system) process `pid` has used so far, from /proc (Linux; NaN elsewhere). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100/s)
  } catch {
    return Number.NaN;
  }
}

/**
 * Fetches `url` every second, as a Prometheus scraping at 1 s would (failures printed, and
 * each fetch's time with BENCH_WS_SCRAPE_LOG); returns the stop.
 */
export function scrapeEverySecond(url: string): () => void {
  const timer = setInterval(() => {
    const started = performance.now();
    fetch(url)
      .then((res) => (res.ok ? res.text() : Promise.reject(new Error(`GET /metrics: ${res.status}`))))
      .then((text) => {
        if (process.env.BENCH_WS_SCRAPE_LOG) process.stderr.write(`scrape ${(performance.now() - started).toFixed(1)} ms, ${text.length} bytes\n`);
      })
      .catch((err: unknown) => process.stderr.write(`bench scrape failed: ${String(err)}\n`));
  }, 1000);
  return () => clearInterval(timer);
}
