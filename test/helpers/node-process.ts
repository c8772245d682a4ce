/**
 * A file-engine node as a child process (`tributary start`), for tests that need a real
 * process: its RSS, its exit code, a second node on the same data dir or port. Resolves
 * once the node printed its listening line; `exited` resolves with its exit code.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { within } from "./wait.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
export const BIN = join(ROOT, "server/bin/tributary.mjs");

export interface NodeChild {
  child: ChildProcess;
  pid: number;
  httpPort: number;
  mqttPort: number;
  dataDir: string;
  stderr(): string;
  /** Resident set size now, bytes (from /proc). */
  rss(): number;
  exited: Promise<number | null>;
  /** SIGTERM, wait for the exit; removes the data dir unless `keepDataDir`. */
  stop(options?: { keepDataDir?: boolean }): Promise<void>;
}

export interface SpawnOptions {
  dataDir?: string;
  /** Extra CLI arguments (after the defaults: --port 0 --mqtt-port 0 --data-dir ... --log-level info). */
  args?: string[];
  env?: Record<string, string>;
  /** Runs the node under this open-file limit (`ulimit -n`, lowering only). */
  openFileLimit?: number;
}

/** Starts `tributary start`; rejects with its stderr if it exits before listening. */
export async function spawnFileNode(options: SpawnOptions = {}): Promise<NodeChild> {
  const started = spawnTributary(["start", "--port", "0", "--mqtt-port", "0", ...(options.args ?? [])], options);
  const { child, dataDir } = started;
  let stdout = "";
  const [httpPort, mqttPort] = await within(
    new Promise<[number, number]>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        stdout += d.toString();
        const m = /tributary listening http=[^:\s]+:(\d+) mqtt=[^:\s]+:(\d+)/.exec(stdout);
        if (m) resolve([Number(m[1]), Number(m[2])]);
      });
      void started.exited.then((code) => reject(new Error(`node exited with ${code} before listening:\n${started.stderr()}`)));
    }),
    20_000,
    "the node's listening line",
  );
  return {
    child,
    pid: child.pid!,
    httpPort,
    mqttPort,
    dataDir,
    stderr: started.stderr,
    rss: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) * 1024,
    exited: started.exited,
    async stop({ keepDataDir = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await started.exited;
      if (!keepDataDir && options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs the `tributary` command with a data dir (a fresh temp dir unless given); nothing awaited. */
export function spawnTributary(args: string[], options: SpawnOptions = {}): { child: ChildProcess; dataDir: string; stderr(): string; exited: Promise<number | null> } {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "tributary-node-"));
  const argv = [process.execPath, BIN, ...args, "--data-dir", dataDir, "--log-level", "info"];
  const [command, ...rest] = options.openFileLimit === undefined ? argv : ["/bin/sh", "-c", 'ulimit -n "$0" && exec "$@"', String(options.openFileLimit), ...argv];
  const child = spawn(command!, rest, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, dataDir, stderr: () => stderr, exited };
}
