/**
 * Cluster membership: which gateway nodes are alive, where to reach them, and how they are.
 *
 * `NodeRegistry` → `RedisNodeRegistry` (nodes sharing one Redis register with a TTL
 * heartbeat) and `LocalNodeRegistry` (file engine: the cluster is this node).
 *
 * Guarantees:
 * - `list()` returns the nodes whose last heartbeat is younger than the TTL, sorted by
 *   `startedAt` then `nodeId`; a node that stops heartbeating (crash, SIGKILL, partition
 *   from Redis) drops out at most `ttlMs` after its last heartbeat. A node that closes
 *   cleanly deregisters at once.
 * - `checkStorage()` resolves when the shared storage answers (Redis PING within a short
 *   timeout, the result cached briefly), and rejects with UNAVAILABLE otherwise; /readyz
 *   relies on it.
 */
export interface NodeUrls {
  /** HTTP API base URL, `http://host:port`. */
  http: string;
  /** SDK WebSocket base URL, `ws://host:port` (the SDK appends /ws). */
  ws: string;
  /** MQTT over TCP, `mqtt://host:port`; null when MQTT is disabled. */
  mqtt: string | null;
}

export interface NodeInfo {
  nodeId: string;
  urls: NodeUrls;
  engine: string;
  /** ms since the epoch. */
  startedAt: number;
  /** ms since the epoch, by the node's clock, of the heartbeat that wrote this entry. */
  lastHeartbeat: number;
  /** Open client connections by kind ("ws": SDK, "mqtt": MQTT over TCP/TLS, "mqtt-ws": MQTT over WebSocket) at the last heartbeat. */
  connections: Record<string, number>;
  /** "ready" while serving, "draining" while shutting down, "degraded" while storage fails. */
  health: "ready" | "draining" | "degraded";
}

export interface ClusterStatus {
  /** The node that answered. */
  self: string;
  engine: string;
  /** Heartbeat TTL: a node missing for longer than this is gone (0: unknown, or one node). */
  ttlMs: number;
  nodes: NodeInfo[];
}

export interface NodeRegistry {
  /** Writes this node's entry now and keeps it fresh until close(). */
  start(): Promise<void>;
  /** The live nodes, this one included while it heartbeats. */
  list(): Promise<NodeInfo[]>;
  status(): Promise<ClusterStatus>;
  /** Resolves when shared storage answers; rejects UNAVAILABLE (message says why) otherwise. */
  checkStorage(): Promise<void>;
  /** Marks this node draining (written at once, best effort). */
  drain(): Promise<void>;
  /** Stops heartbeating and removes this node's entry. Idempotent. */
  close(): Promise<void>;
}

/** What a registry needs to know about its own node; `describe()` is called at every heartbeat. */
export interface SelfDescriptor {
  nodeId: string;
  engine: string;
  startedAt: number;
  urls: NodeUrls;
  connections(): Record<string, number>;
}

export function sortNodes(nodes: NodeInfo[]): NodeInfo[] {
  return nodes.sort((a, b) => a.startedAt - b.startedAt || a.nodeId.localeCompare(b.nodeId));
}
