/**
 * Node registry in Redis: each node writes its entry with a TTL and rewrites it every
 * `ttlMs / 3`; an entry whose node stopped heartbeating expires in Redis itself (Redis'
 * clock, so node clock skew does not matter). Keys share the hash tag `{<prefix>:cluster}`
 * (one Cluster slot, so MGET works on Redis Cluster too):
 *
 *   {<prefix>:cluster}:node:<nodeId>     string: NodeInfo as JSON, PX ttlMs
 *   {<prefix>:cluster}:nodes             set: node ids (an index; ids whose entry expired are
 *                                        removed lazily by whoever lists)
 *
 * The registry has its own fail-fast connection (no offline queue): while Redis is
 * unreachable, heartbeats and `checkStorage()` fail at once instead of queueing.
 *
 * Failures nobody awaits go to the `reporter` (logged and counted): connection errors,
 * heartbeats (task `cluster-heartbeat`: `cluster.heartbeat_failed` when they start failing,
 * `cluster.heartbeat_recovered` when one succeeds again), pruning expired ids and
 * deregistering on close (task `cluster-registry`).
 */
import { TributaryError, toTributaryError } from "../errors.ts";
import { connectClient, createClient, type RedisClient } from "../redis/redis-connection.ts";
import { RedisErrorReporter, type FailureSeries } from "../redis/redis-error-reporter.ts";
import { keyPrefixOf } from "../redis/redis-key-prefix.ts";
import { parseRedisUrl } from "../redis/redis-url.ts";
import { sortNodes, type ClusterStatus, type NodeInfo, type NodeRegistry, type SelfDescriptor } from "./node-registry.ts";

export interface RedisNodeRegistryOptions {
  /** The node's Redis URL (same forms as the engine's; `prefix` query parameter honoured). */
  redisUrl: string;
  /** A node missing heartbeats for this long is gone (default 10 s; heartbeat every ttlMs/3). */
  ttlMs?: number;
  /** PING timeout of `checkStorage()` (default 500 ms). */
  probeTimeoutMs?: number;
  /** How long a `checkStorage()` result is reused (default 1000 ms). */
  probeCacheMs?: number;
  /** Where failures nobody awaits go (see the module comment). Default: logged to stderr, not counted. */
  reporter?: RedisErrorReporter;
}

export const DEFAULT_NODE_TTL_MS = 10_000;

class ClusterKeys {
  constructor(readonly prefix: string) {}
  node(id: string): string {
    return `{${this.prefix}:cluster}:node:${id}`;
  }
  nodes(): string {
    return `{${this.prefix}:cluster}:nodes`;
  }
}

export class RedisNodeRegistry implements NodeRegistry {
  readonly #client: RedisClient;
  readonly #keys: ClusterKeys;
  readonly #self: SelfDescriptor | null;
  readonly #ttlMs: number;
  readonly #probeTimeoutMs: number;
  readonly #probeCacheMs: number;
  readonly #reporter: RedisErrorReporter;
  readonly #heartbeatFailures: FailureSeries;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #health: NodeInfo["health"] = "ready";
  #probe: { at: number; result: Promise<void> } | undefined;
  #closed = false;

  private constructor(client: RedisClient, self: SelfDescriptor | null, options: RedisNodeRegistryOptions, prefix: string, reporter: RedisErrorReporter) {
    this.#client = client;
    this.#self = self;
    this.#keys = new ClusterKeys(prefix);
    this.#ttlMs = options.ttlMs ?? DEFAULT_NODE_TTL_MS;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 500;
    this.#probeCacheMs = options.probeCacheMs ?? 1000;
    this.#reporter = reporter;
    this.#heartbeatFailures = reporter.series("cluster-heartbeat", "cluster.heartbeat_failed", "cluster.heartbeat_recovered", { nodeId: self?.nodeId });
  }

  /**
   * Connects to Redis (UNAVAILABLE if it cannot). With `self`, the registry heartbeats for
   * that node once `start()` is called; without, it only reads (the `cluster status` CLI).
   */
  static async connect(self: SelfDescriptor | null, options: RedisNodeRegistryOptions): Promise<RedisNodeRegistry> {
    const target = parseRedisUrl(options.redisUrl);
    const reporter = options.reporter ?? RedisErrorReporter.standalone();
    const client = createClient({ ...target, commandTimeoutMs: Math.max(1000, options.probeTimeoutMs ?? 500) }, { role: "commands", component: "node-registry", reporter });
    await connectClient(client, target);
    return new RedisNodeRegistry(client, self, options, keyPrefixOf(target), reporter);
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  async start(): Promise<void> {
    if (!this.#self) throw new TributaryError("INTERNAL", "a read-only registry cannot start heartbeating");
    await this.#beat();
    this.#timer = setInterval(() => void this.#beat(), Math.max(50, Math.floor(this.#ttlMs / 3)));
    this.#timer.unref();
  }

  async list(): Promise<NodeInfo[]> {
    try {
      const ids = (await this.#client.smembers(this.#keys.nodes())).sort();
      if (ids.length === 0) return [];
      const values = await this.#client.mget(...ids.map((id) => this.#keys.node(id)));
      const nodes: NodeInfo[] = [];
      const gone: string[] = [];
      values.forEach((json, i) => {
        if (json === null) gone.push(ids[i]!);
        else nodes.push(JSON.parse(json) as NodeInfo);
      });
      if (gone.length > 0) {
        // Housekeeping of the index only: the expired ids stay in it and the next list prunes them.
        await this.#client.srem(this.#keys.nodes(), ...gone).catch((err: unknown) => this.#reporter.report("cluster-registry", "cluster.registry_prune_failed", err, { nodes: gone }));
      }
      return sortNodes(nodes);
    } catch (err) {
      throw unavailable("cannot read the node registry from Redis", err);
    }
  }

  async status(): Promise<ClusterStatus> {
    // A read-only registry (the CLI) does not know the nodes' TTL: 0 = unknown.
    return { self: this.#self?.nodeId ?? "", engine: "redis", ttlMs: this.#self ? this.#ttlMs : 0, nodes: await this.list() };
  }

  checkStorage(): Promise<void> {
    const now = Date.now();
    if (this.#probe && now - this.#probe.at < this.#probeCacheMs) return this.#probe.result;
    const result = this.#ping();
    // Not dropped: the promise is cached and every caller awaits it (and sees the failure);
    // this only keeps a probe nobody awaited any more from being an unhandled rejection.
    result.catch(() => undefined);
    this.#probe = { at: now, result };
    return result;
  }

  async drain(): Promise<void> {
    this.#health = "draining";
    await this.#beat();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#beating;
    if (this.#self && this.#timer) {
      const id = this.#self.nodeId;
      // On failure the entry stays until its TTL runs out: other nodes list this one for up to ttlMs more.
      await Promise.all([this.#client.del(this.#keys.node(id)), this.#client.srem(this.#keys.nodes(), id)]).catch((err: unknown) =>
        this.#reporter.report("cluster-registry", "cluster.deregister_failed", err, { nodeId: id, expiresInMs: this.#ttlMs }),
      );
    }
    this.#client.disconnect();
  }

  async #ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#client.ping(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no PING reply within ${this.#probeTimeoutMs} ms`)), this.#probeTimeoutMs);
        }),
      ]);
    } catch (err) {
      throw unavailable("Redis does not answer", err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Writes this node's entry (one at a time; a beat while one is in flight is skipped). */
  #beat(): Promise<void> {
    if (this.#beating || this.#closed || !this.#self) return this.#beating ?? Promise.resolve();
    const self = this.#self;
    const info: NodeInfo = {
      nodeId: self.nodeId,
      urls: self.urls,
      engine: self.engine,
      startedAt: self.startedAt,
      lastHeartbeat: Date.now(),
      connections: self.connections(),
      health: this.#health,
    };
    this.#beating = this.#client
      .multi()
      .set(this.#keys.node(self.nodeId), JSON.stringify(info), "PX", this.#ttlMs)
      .sadd(this.#keys.nodes(), self.nodeId)
      .exec()
      .then((replies) => {
        const failed = replies?.find(([err]) => err)?.[0];
        if (failed) throw failed;
        this.#heartbeatFailures.recovered();
      })
      .catch((err: unknown) => {
        // The entry expires after ttlMs without a successful beat (other nodes then stop listing
        // this node); the next beat, a third of the TTL later, tries again.
        this.#heartbeatFailures.failed(err, { ttlMs: this.#ttlMs });
      })
      .finally(() => (this.#beating = undefined));
    return this.#beating;
  }
}

function unavailable(what: string, err: unknown): TributaryError {
  const message = toTributaryError(err).message;
  const why = /Stream isn't writeable|Connection is closed/i.test(message) ? "not connected (reconnecting in the background)" : message;
  return new TributaryError("UNAVAILABLE", `${what}: ${why}`, {}, { cause: err });
}
