/**
 * Real Redis for tests and benches: starts `redis-server` processes on free loopback ports
 * in temp dirs and stops ONLY the processes it started, by PID.
 *
 * - `startRedis()`: one standalone server (optionally a replica of another, optionally AOF).
 * - `startSentinelSetup()`: a primary, 2 replicas and 3 Sentinels monitoring them.
 * - `startRedisCluster()`: 3 primaries + 3 replicas joined with `redis-cli --cluster create`.
 *
 * If a server cannot start, the call throws (tests fail loudly, they never skip).
 * Every process is also killed when the test process exits, so a crashed test leaves no
 * orphan behind.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { createServer, createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { waitFor as waitUntil } from "./wait.ts";

const execFileAsync = promisify(execFile);

export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? "/usr/bin/redis-server";
export const REDIS_CLI_BIN = process.env.REDIS_CLI_BIN ?? "/usr/bin/redis-cli";

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => {
    for (const child of live) {
      try {
        if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  };
  process.once("exit", killAll);
  // A signal ends the process without "exit": kill the servers, then die of the same signal.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killAll();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.once(sig, onSignal);
  }
}

/** A free loopback TCP port (asks the OS for one, then releases it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Sends one inline command over a raw socket and returns the raw reply ("" on failure). */
export async function rawCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    let buf = "";
    const done = (value: string): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(buf), timeoutMs);
    sock.once("error", () => done(""));
    sock.on("connect", () => sock.write(`${command}\r\n`));
    sock.on("data", (d) => {
      buf += d.toString("utf8");
      // simple replies end with \r\n; bulk replies: wait for the declared length
      if (buf.startsWith("$")) {
        const nl = buf.indexOf("\r\n");
        const len = Number(buf.slice(1, nl));
        if (len < 0 || buf.length >= nl + 2 + len + 2) done(buf);
      } else if (buf.endsWith("\r\n")) done(buf);
    });
  });
}

export interface RedisServerOptions {
  /** Extra `redis-server` arguments (`--appendonly yes`, ...). */
  args?: string[];
  /** `appendonly yes` + `appendfsync always` so a restart keeps every write. */
  persistent?: boolean;
  /** Makes this server a replica of the given port. */
  replicaOf?: number;
  /** Cluster mode (cluster-enabled + a cluster bus port). */
  cluster?: boolean;
}

export class RedisServer {
  port: number;
  readonly dir: string;
  readonly #options: RedisServerOptions;
  #busPort: number;
  #started = false;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();

  constructor(port: number, busPort: number, dir: string, options: RedisServerOptions) {
    this.port = port;
    this.#busPort = busPort;
    this.dir = dir;
    this.#options = options;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  get pid(): number | undefined {
    return this.#child?.pid;
  }
  get running(): boolean {
    return this.#child !== null;
  }

  /**
   * Starts (or restarts, same port and dir) the process and waits for PING. On a first start,
   * a port taken between choosing and binding it is replaced by another free one.
   */
  async start(): Promise<void> {
    if (this.#child) throw new Error(`redis-server on ${this.port} is already running`);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#startOnce();
        this.#started = true;
        return;
      } catch (err) {
        if (this.#started || attempt >= 3 || !/Address already in use/i.test(String(err))) throw err;
        this.port = await freePort();
        if (this.#options.cluster) this.#busPort = await freePort();
      }
    }
  }

  async #startOnce(): Promise<void> {
    const o = this.#options;
    const args = [
      "--port", String(this.port),
      "--bind", "127.0.0.1",
      "--dir", this.dir,
      "--daemonize", "no",
      "--save", "",
      "--appendonly", o.persistent ? "yes" : "no",
      ...(o.persistent ? ["--appendfsync", "always"] : []),
      "--logfile", join(this.dir, "redis.log"),
      "--protected-mode", "no",
      ...(o.replicaOf !== undefined ? ["--replicaof", "127.0.0.1", String(o.replicaOf)] : []),
      ...(o.cluster
        ? ["--cluster-enabled", "yes", "--cluster-config-file", join(this.dir, "nodes.conf"),
           "--cluster-node-timeout", "1500", "--cluster-port", String(this.#busPort)]
        : []),
      ...(o.args ?? []),
    ];
    await this.#spawn(REDIS_SERVER_BIN, args);
  }

  async #spawn(bin: string, args: string[]): Promise<void> {
    installExitHook();
    const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    live.add(child);
    this.#child = child;
    this.#exited = new Promise((resolve) =>
      child.once("exit", () => {
        live.delete(child);
        if (this.#child === child) this.#child = null;
        resolve();
      }),
    );
    let spawnError: Error | null = null;
    child.once("error", (err) => (spawnError = err));
    try {
      await waitUntil(
        async () => {
          if (spawnError) throw new Error(`cannot start ${bin}: ${(spawnError as Error).message}`);
          if (!this.#child) throw new Error(`${bin} on port ${this.port} exited at startup: ${stderr}`);
          return (await rawCommand(this.port, "PING", 300)).startsWith("+PONG");
        },
        { timeoutMs: 10_000, what: `${bin} on port ${this.port} to answer PING`, intervalMs: 30 },
      );
    } catch (err) {
      await this.stop("SIGKILL");
      throw new Error(`${(err as Error).message}\n${this.log().slice(-2000)}`);
    }
  }

  /** Starts the process as a Sentinel with the given config text. */
  async startSentinel(config: string): Promise<void> {
    const file = join(this.dir, "sentinel.conf");
    writeFileSync(file, config);
    await this.#spawn(REDIS_SERVER_BIN, [file, "--sentinel", "--logfile", join(this.dir, "redis.log")]);
  }

  /** Stops the process this object started (SIGTERM by default; SIGKILL simulates a crash). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (!child || child.pid === undefined) return;
    try {
      process.kill(child.pid, signal);
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }, 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Freezes / resumes the process (a network partition, as seen by clients). */
  pause(): void {
    if (this.#child?.pid !== undefined) process.kill(this.#child.pid, "SIGSTOP");
  }
  resume(): void {
    if (this.#child?.pid !== undefined) process.kill(this.#child.pid, "SIGCONT");
  }

  log(): string {
    const file = join(this.dir, "redis.log");
    return existsSync(file) ? readFileSync(file, "utf8") : "";
  }

  /** Stops the process and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function newServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const busPort = options.cluster ? await freePort() : 0;
  const dir = mkdtempSync(join(tmpdir(), `tributary-redis-${port}-`));
  return new RedisServer(port, busPort, dir, options);
}

/** One standalone redis-server (started). */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const server = await newServer(options);
  await server.start();
  return server;
}

function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  return waitUntil(check, { what, timeoutMs, intervalMs: 50 });
}

async function waitReplicaInSync(replica: RedisServer): Promise<void> {
  await waitFor(`replica ${replica.port} in sync`, async () => {
    const info = await rawCommand(replica.port, "INFO replication");
    return /master_link_status:up/.test(info);
  }, 15_000);
}

export interface SentinelSetup {
  name: string;
  primary: RedisServer;
  replicas: RedisServer[];
  sentinels: RedisServer[];
  /** `[{host, port}]` of the Sentinels, for ioredis `sentinels`. */
  sentinelNodes: { host: string; port: number }[];
  /** Port of the primary the Sentinels currently announce. */
  currentPrimaryPort(): Promise<number>;
  /** Kills every process of the setup and removes their dirs. */
  destroy(): Promise<void>;
}

/** A primary, 2 replicas and 3 Sentinels (quorum 2, down-after 1 s). */
export async function startSentinelSetup(options: { name?: string; persistent?: boolean } = {}): Promise<SentinelSetup> {
  const name = options.name ?? "tributary";
  const started: RedisServer[] = [];
  try {
    const primary = await startRedis({ persistent: options.persistent });
    started.push(primary);
    const replicas: RedisServer[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await startRedis({ persistent: options.persistent, replicaOf: primary.port });
      started.push(r);
      replicas.push(r);
    }
    for (const r of replicas) await waitReplicaInSync(r);
    const sentinels: RedisServer[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await newServer();
      started.push(s);
      await s.startSentinel(
        [
          `port ${s.port}`,
          `bind 127.0.0.1`,
          `dir ${s.dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 4000`,
          `sentinel parallel-syncs ${name} 2`,
          "",
        ].join("\n"),
      );
      sentinels.push(s);
    }
    const currentPrimaryPort = async (): Promise<number> => {
      for (const s of sentinels) {
        if (!s.running) continue;
        const reply = await rawCommand(s.port, `SENTINEL get-master-addr-by-name ${name}`);
        const m = /\$\d+\r\n[^\r]+\r\n\$\d+\r\n(\d+)\r\n/.exec(reply);
        if (m) return Number(m[1]);
      }
      throw new Error("no Sentinel answered get-master-addr-by-name");
    };
    // Sentinels must have discovered the replicas (and each other) before a failover test.
    await waitFor("Sentinels to discover replicas and peers", async () => {
      for (const s of sentinels) {
        const reply = await rawCommand(s.port, `SENTINEL master ${name}`);
        const slaves = /num-slaves\r\n[^\r]*\r\n(\d+)/.exec(reply);
        const peers = /num-other-sentinels\r\n[^\r]*\r\n(\d+)/.exec(reply);
        if (!slaves || Number(slaves[1]) < 2 || !peers || Number(peers[1]) < 2) return false;
      }
      return true;
    }, 20_000);
    return {
      name,
      primary,
      replicas,
      sentinels,
      sentinelNodes: sentinels.map((s) => ({ host: "127.0.0.1", port: s.port })),
      currentPrimaryPort,
      async destroy() {
        await Promise.all(started.map((s) => s.destroy()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.destroy()));
    throw err;
  }
}

export interface RedisClusterSetup {
  nodes: RedisServer[];
  /** `[{host, port}]` of every node, for ioredis `Cluster`. */
  startupNodes: { host: string; port: number }[];
  destroy(): Promise<void>;
}

/** 3 primaries + 3 replicas, created with `redis-cli --cluster create --cluster-replicas 1`. */
export async function startRedisCluster(): Promise<RedisClusterSetup> {
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < 6; i++) nodes.push(await newServer({ cluster: true }));
    await Promise.all(nodes.map((n) => n.start()));
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
    try {
      await execFileAsync(REDIS_CLI_BIN, ["--cluster", "create", ...addrs, "--cluster-replicas", "1", "--cluster-yes"], {
        timeout: 30_000,
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`redis-cli --cluster create failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
    }
    await waitFor("cluster_state:ok on every node", async () => {
      for (const n of nodes) {
        const info = await rawCommand(n.port, "CLUSTER INFO");
        if (!/cluster_state:ok/.test(info)) return false;
      }
      return true;
    }, 30_000);
    // replicas have finished their initial sync (acks=all WAIT needs them)
    await waitFor("every cluster replica in sync", async () => {
      let replicas = 0;
      for (const n of nodes) {
        const info = await rawCommand(n.port, "INFO replication");
        if (/role:slave/.test(info)) {
          if (!/master_link_status:up/.test(info)) return false;
          replicas++;
        }
      }
      return replicas === 3;
    }, 30_000);
    return {
      nodes,
      startupNodes: nodes.map((n) => ({ host: "127.0.0.1", port: n.port })),
      async destroy() {
        await Promise.all(nodes.map((n) => n.destroy()));
      },
    };
  } catch (err) {
    await Promise.all(nodes.map((n) => n.destroy()));
    throw err;
  }
}
