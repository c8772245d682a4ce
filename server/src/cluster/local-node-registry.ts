/**
 * The cluster of a file-engine node: just itself. Storage readiness is the engine answering.
 */
import { TributaryError, toTributaryError } from "../errors.ts";
import type { LogEngine } from "../log/log-engine.ts";
import type { ClusterStatus, NodeInfo, NodeRegistry, SelfDescriptor } from "./node-registry.ts";

export class LocalNodeRegistry implements NodeRegistry {
  readonly #self: SelfDescriptor;
  readonly #engine: LogEngine;
  #health: NodeInfo["health"] = "ready";

  constructor(self: SelfDescriptor, engine: LogEngine) {
    this.#self = self;
    this.#engine = engine;
  }

  async start(): Promise<void> {}

  async list(): Promise<NodeInfo[]> {
    const s = this.#self;
    return [{ nodeId: s.nodeId, urls: s.urls, engine: s.engine, startedAt: s.startedAt, lastHeartbeat: Date.now(), connections: s.connections(), health: this.#health }];
  }

  async status(): Promise<ClusterStatus> {
    return { self: this.#self.nodeId, engine: this.#self.engine, ttlMs: 0, nodes: await this.list() };
  }

  async checkStorage(): Promise<void> {
    try {
      await this.#engine.listTopics();
    } catch (err) {
      throw new TributaryError("UNAVAILABLE", `the ${this.#engine.kind} log engine does not answer: ${toTributaryError(err).message}`, {}, { cause: err });
    }
  }

  async drain(): Promise<void> {
    this.#health = "draining";
  }

  async close(): Promise<void> {
    this.#health = "draining";
  }
}
