import type { AuthService } from "../auth/index.ts";
import type { Broker } from "../broker/broker.ts";
import type { TributaryConfig } from "../config/config.ts";
import type { GroupCoordinator, PresenceRegistry } from "../groups/index.ts";
import type { Logger } from "../logger.ts";
import type { ConnectionLimit } from "./connection-limit.ts";

/** What every gateway (HTTP, WebSocket, MQTT) is given by the node that mounts it. */
export interface GatewayContext {
  broker: Broker;
  config: TributaryConfig;
  /** Stable id of this node (shown to clients, used in presence and cluster status). */
  nodeId: string;
  log: Logger;
  /** The node's consumer-group coordinator (docs/consumer-groups.md); absent when a gateway runs without groups. */
  groups?: GroupCoordinator;
  /** Who is subscribed to which topic; absent when a gateway runs without presence. */
  presence?: PresenceRegistry;
  /** The node's budget of client connections, shared by every gateway; absent = `limits.maxConnections` per gateway. */
  connections?: ConnectionLimit;
  /**
   * The node's auth layer (docs/security.md "For gateway authors"): authenticate each
   * connection or request, ask `auth.authorizer` before every action, and on
   * `auth.on("change")` close connections whose `auth.validate(identity)` is an error and
   * re-check live subscriptions. Absent = open mode (every client an anonymous admin), as
   * in gateway unit tests that mount a gateway without a node.
   */
  auth?: AuthService;
}

/** A mounted gateway; `close()` says goodbye to its clients and releases its resources. */
export interface Gateway {
  close(): Promise<void>;
  /** Open client connections by kind (`ws`, `mqtt`, `mqtt-ws`), for the cluster registry; absent for gateways without clients. */
  connectionCounts?(): Record<string, number>;
}
