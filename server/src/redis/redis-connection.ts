/**
 * Redis connections of a node, one factory for every user (log engine, node registry,
 * group leases and bus): fail-fast command connections, patient subscriber connections,
 * standalone / Sentinel / Cluster from one `RedisTarget`.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { TributaryError } from "../errors.ts";
import type { RedisErrorReporter } from "./redis-error-reporter.ts";
import { mapRedisError } from "./redis-errors.ts";

export type RedisClient = Redis | Cluster;

export interface RedisNode {
  host: string;
  port: number;
}

/** Where the engine's Redis is: exactly one of `url`, `cluster`, `sentinel`. */
export interface RedisTarget {
  /** Standalone: `redis://[user:pass@]host:port[/db]` (or `rediss://`). */
  url?: string;
  /** Redis Cluster startup nodes. */
  cluster?: RedisNode[];
  /** Sentinel-managed primary. */
  sentinel?: { sentinels: RedisNode[]; name: string };
  password?: string;
  /** Socket connect timeout (default 2000 ms). */
  connectTimeoutMs?: number;
  /** Client-side timeout of every command (default 5000 ms). */
  commandTimeoutMs?: number;
}

/**
 * Fail-fast client settings: no offline queue (a command while disconnected fails at once),
 * no retry of in-flight commands after a disconnect (an append is never silently re-sent, so
 * it cannot be written twice), reconnect in the background with a short capped backoff.
 */
function failFastOptions(target: RedisTarget): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: target.connectTimeoutMs ?? 2000,
    commandTimeout: target.commandTimeoutMs ?? 5000,
    retryStrategy: (times: number) => Math.min(50 * times, 1000),
    // After a Sentinel failover the old primary comes back as a replica: reconnect to the
    // primary the Sentinels announce instead of failing every write with READONLY.
    reconnectOnError: (err: Error) => err.message.startsWith("READONLY"),
    ...(target.password ? { password: target.password } : {}),
  };
}

/** Settings of the subscriber connection: it may wait (subscriptions are re-made on reconnect). */
function subscriberOptions(target: RedisTarget): RedisOptions {
  return {
    ...failFastOptions(target),
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    autoResendUnfulfilledCommands: true,
    commandTimeout: undefined,
  };
}

/** Where the target is, for logs and error context (a password in the URL is masked). */
function describeTarget(t: RedisTarget): string {
  if (t.cluster) return `cluster ${t.cluster.map((n) => `${n.host}:${n.port}`).join(",")}`;
  if (t.sentinel) return `sentinel ${t.sentinel.name} via ${t.sentinel.sentinels.map((n) => `${n.host}:${n.port}`).join(",")}`;
  return (t.url ?? "redis://127.0.0.1:6379").replace(/\/\/[^@/]*@/, "//***@");
}

export interface ClientOptions {
  /** `commands`: fail-fast; `subscriber`: waits while disconnected (pub/sub, re-subscribes on reconnect). */
  role: "commands" | "subscriber";
  /** Who uses the connection, for logs ("log-engine", "node-registry", "group-coordinator"). */
  component: string;
  /** Gets the connection's `error` events (logged and counted, never dropped). */
  reporter: RedisErrorReporter;
}

/** A lazily connecting client (call connectClient); its `error` events go to `options.reporter`. */
export function createClient(target: RedisTarget, options: ClientOptions): RedisClient {
  const client = newClient(target, options.role);
  options.reporter.watch(client, { component: options.component, role: options.role, target: describeTarget(target) });
  return client;
}

function newClient(target: RedisTarget, role: ClientOptions["role"]): RedisClient {
  const opts = role === "commands" ? failFastOptions(target) : subscriberOptions(target);
  const count = [target.url, target.cluster, target.sentinel].filter((x) => x !== undefined).length;
  if (count > 1) throw new TributaryError("INVALID_CONFIG", "give exactly one of url, cluster, sentinel", {});
  if (target.cluster) {
    const clusterOpts: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: role === "subscriber",
      scaleReads: "master",
      maxRedirections: 16,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      clusterRetryStrategy: (times: number) => Math.min(100 * times, 1000),
      shardedSubscribers: role === "subscriber",
      redisOptions: { ...opts, lazyConnect: false },
    };
    return new Cluster(target.cluster, clusterOpts);
  }
  if (target.sentinel) {
    return new Redis({
      ...opts,
      sentinels: target.sentinel.sentinels,
      name: target.sentinel.name,
      role: "master",
      sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1000),
      failoverDetector: true,
    });
  }
  return new Redis(target.url ?? "redis://127.0.0.1:6379", opts);
}

/**
 * Connects a lazily created client; connection failures become UNAVAILABLE. Waits for the
 * "ready" event as well as the connect() promise: ioredis' Cluster sometimes reaches "ready"
 * without settling connect().
 */
export async function connectClient(client: RedisClient, target: RedisTarget): Promise<void> {
  const limitMs = (target.connectTimeoutMs ?? 2000) * 3 + 2000;
  let timer: NodeJS.Timeout | undefined;
  let onReady: (() => void) | undefined;
  try {
    await Promise.race([
      client.connect().catch((err: unknown) => {
        if (client.status !== "ready") throw err;
      }),
      new Promise<void>((resolve) => {
        onReady = resolve;
        client.once("ready", resolve);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`connect ETIMEDOUT: not ready after ${limitMs} ms`)), limitMs);
      }),
    ]);
  } catch (err) {
    client.disconnect();
    throw mapRedisError(err, { target: describeTarget(target) });
  } finally {
    clearTimeout(timer);
    if (onReady) client.removeListener("ready", onReady);
  }
}

export { describeTarget };
