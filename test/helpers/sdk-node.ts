/**
 * A real Tributary node (startNode, file engine) in a temp dir on its own port, for SDK
 * tests; `restart()` stops it and starts a new one on the same port and data dir (a full
 * node restart), `close()` stops it and removes the dir.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { TributaryClient } from "@tributary/client";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CONFIG, type TributaryConfig } from "../../server/src/config/config.ts";
import { createLogger } from "../../server/src/logger.ts";
import { startNode, type StartNodeOptions, type TributaryNode } from "../../server/src/node.ts";
import { retryUntilOk, waitFor } from "./wait.ts";

export interface SdkTestNode {
  node: TributaryNode;
  /** ws://127.0.0.1:<port> — the base URL the SDK takes. */
  url: string;
  port: number;
  dataDir: string;
  config: TributaryConfig;
  /** Stops the node; starts a new one on the same port and data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface SdkTestNodeOptions {
  topics?: Partial<TributaryConfig["topics"]>;
  limits?: Partial<TributaryConfig["limits"]>;
  file?: Partial<TributaryConfig["file"]>;
  /** Consumer-group coordinator settings (e.g. a short rebalanceTimeoutMs). */
  groups?: StartNodeOptions["groups"];
  /** Presence settings (e.g. a short sessionTimeoutMs). */
  presence?: StartNodeOptions["presence"];
}

export async function startSdkTestNode(options: SdkTestNodeOptions = {}): Promise<SdkTestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-sdk-"));
  const config: TributaryConfig = {
    ...DEFAULT_CONFIG,
    dataDir,
    host: "127.0.0.1",
    port: 0,
    file: { ...DEFAULT_CONFIG.file, fsync: "never", ...options.file },
    topics: { ...DEFAULT_CONFIG.topics, ...options.topics },
    limits: { ...DEFAULT_CONFIG.limits, ...options.limits },
    mqtt: { ...DEFAULT_CONFIG.mqtt, enabled: false, port: 0 },
    log: { level: "error" },
  };
  const logger = createLogger("error");
  const nodeOptions: StartNodeOptions = { logger, ...(options.groups ? { groups: options.groups } : {}), ...(options.presence ? { presence: options.presence } : {}) };
  let node: TributaryNode | undefined = await startNode(config, nodeOptions);
  const port = node.httpPort;
  const pinned = { ...config, port };
  const handle: SdkTestNode = {
    get node() {
      if (!node) throw new Error("node is stopped");
      return node;
    },
    url: `ws://127.0.0.1:${port}`,
    port,
    dataDir,
    config: pinned,
    async stop() {
      await node?.close();
      node = undefined;
    },
    async start() {
      // retried while the old listen socket is still being released
      node = await retryUntilOk(() => startNode(pinned, nodeOptions), { timeoutMs: 5000, what: `the node to listen on port ${port} again` });
    },
    async restart() {
      await handle.stop();
      await handle.start();
    },
    async close() {
      await handle.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}

/** `waitFor` (test/helpers/wait.ts) with this file's argument order: polls `check` until true; throws after `timeoutMs` naming `what`. */
export function until(check: () => boolean, what = "condition", timeoutMs = 20_000): Promise<void> {
  return waitFor(check, { what, timeoutMs });
}

/**
 * The positive marker behind "nothing extra arrives late": publishes one marker record to
 * each of `partitions` through `client` and returns partition → marker offset. A
 * subscription delivers each partition in offset order, so a subscriber that has received
 * every marker (`hasMarks`) has everything it was going to get from before them.
 */
export async function publishMarks(client: TributaryClient, topic: string, partitions: number[], value: unknown = "__marker__"): Promise<Map<number, number>> {
  const marks = new Map<number, number>();
  for (const partition of partitions) marks.set(partition, (await client.publish(topic, value, { partition })).offset);
  return marks;
}

/** True once `received` (partition, offset) pairs include every marker of `marks`. */
export function hasMarks(received: Iterable<{ partition: number; offset: number }>, marks: Map<number, number>): boolean {
  const missing = new Set([...marks].map(([p, o]) => `${p}:${o}`));
  for (const r of received) missing.delete(`${r.partition}:${r.offset}`);
  return missing.size === 0;
}
