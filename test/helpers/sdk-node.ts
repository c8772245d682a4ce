/**
 * A real Tributary node (startNode, file engine) in a temp dir on its own port, for SDK
 * tests; `restart()` stops it and starts a new one on the same port and data dir (a full
 * node restart), `close()` stops it and removes the dir.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CONFIG, type TributaryConfig } from "../../server/src/config/config.ts";
import { createLogger } from "../../server/src/logger.ts";
import { startNode, type StartNodeOptions, type TributaryNode } from "../../server/src/node.ts";

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
      // The old listen socket may take a moment to be released.
      for (let attempt = 0; ; attempt++) {
        try {
          node = await startNode(pinned, nodeOptions);
          return;
        } catch (err) {
          if (attempt > 50) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
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

/** Polls `check` every 10 ms until true; throws after `timeoutMs` naming `what`. */
export async function until(check: () => boolean, what = "condition", timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
