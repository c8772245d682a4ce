/**
 * Tributary nodes on the Redis engine for cluster tests and benches:
 *
 * - `startRedisNode(redisUrl)`: an in-process node (startNode) on a free port.
 * - `spawnRedisNode(redisUrl)`: a node as a child process (`tributary start --engine redis`),
 *   so a test can SIGKILL it like a crashed machine. Resolves once the node printed its
 *   "tributary listening" line. Only the PIDs started here are ever signalled.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CONFIG, type TributaryConfig } from "../../server/src/config/config.ts";
import { createLogger } from "../../server/src/logger.ts";
import { startNode, type TributaryNode } from "../../server/src/node.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const BIN = join(ROOT, "server/bin/tributary.mjs");

export interface RedisNodeOptions {
  nodeTtlMs?: number;
  defaultPartitions?: number;
  nodeId?: string;
}

export function redisNodeConfig(redisUrl: string, options: RedisNodeOptions = {}): TributaryConfig {
  return {
    ...DEFAULT_CONFIG,
    dataDir: join(tmpdir(), "tributary-unused"),
    host: "127.0.0.1",
    port: 0,
    engine: "redis",
    redis: { url: redisUrl },
    cluster: { ...DEFAULT_CONFIG.cluster, nodeTtlMs: options.nodeTtlMs ?? DEFAULT_CONFIG.cluster.nodeTtlMs },
    topics: { ...DEFAULT_CONFIG.topics, defaultPartitions: options.defaultPartitions ?? 1 },
    mqtt: { ...DEFAULT_CONFIG.mqtt, enabled: false, port: 0 },
    log: { level: "error" },
  };
}

export async function startRedisNode(redisUrl: string, options: RedisNodeOptions = {}): Promise<TributaryNode & { wsUrl: string }> {
  const node = await startNode(redisNodeConfig(redisUrl, options), { logger: createLogger("error"), nodeId: options.nodeId });
  return Object.assign(node, { wsUrl: `ws://127.0.0.1:${node.httpPort}` });
}

export interface NodeProcess {
  readonly pid: number;
  readonly httpPort: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** ws://127.0.0.1:<port> (SDK base URL) */
  readonly wsUrl: string;
  /** stderr so far (JSON log lines), for failure messages. */
  stderr(): string;
  /** Sends `signal` and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
});

export async function spawnRedisNode(redisUrl: string, options: RedisNodeOptions & { extraArgs?: string[] } = {}): Promise<NodeProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-node-"));
  const args = [BIN, "start", "--engine", "redis", "--redis", redisUrl, "--port", "0", "--mqtt-port", "0", "--data-dir", dataDir, "--log-level", "warn"];
  if (options.nodeTtlMs !== undefined) args.push("--node-ttl-ms", String(options.nodeTtlMs));
  if (options.defaultPartitions !== undefined) args.push("--default-partitions", String(options.defaultPartitions));
  args.push(...(options.extraArgs ?? []));
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      live.delete(child);
      rmSync(dataDir, { recursive: true, force: true });
      resolve();
    }),
  );
  const httpPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start within 20 s:\n${stderr}`)), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      const m = /tributary listening http=[^:\s]+:(\d+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code} before listening:\n${stderr}`));
    });
  });
  return {
    pid: child.pid!,
    httpPort,
    url: `http://127.0.0.1:${httpPort}`,
    wsUrl: `ws://127.0.0.1:${httpPort}`,
    stderr: () => stderr,
    async kill(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Runs the `tributary` CLI to completion; returns exit code, stdout and stderr. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => child.once("exit", (c) => resolve(c ?? 1)));
  return { code, stdout, stderr };
}

/** Percentile (0..100) of a sample, nearest-rank. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
