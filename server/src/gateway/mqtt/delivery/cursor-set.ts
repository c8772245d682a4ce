import type { Broker } from "../../../broker/broker.ts";
import type { Logger } from "../../../logger.ts";
import { levelFor } from "../record-mapping.ts";
import type { FanoutRegistry } from "./fanout.ts";
import { PartitionCursor, type DeliveryTarget } from "./partition-cursor.ts";

export interface CursorDeps {
  broker: Broker;
  registry: FanoutRegistry;
  log: Logger;
}

/** The cursors of one delivery target, one per partition of every log topic it reads. */
export class CursorSet {
  readonly byTopic = new Map<string, PartitionCursor[]>();
  running = false;
  readonly #deps: CursorDeps;
  readonly #target: DeliveryTarget;
  readonly #pending = new Map<string, Promise<void>>();

  constructor(deps: CursorDeps, target: DeliveryTarget) {
    this.#deps = deps;
    this.#target = target;
  }

  /**
   * Cursors for every partition of `logTopic` (creating the topic if allowed). New cursors
   * start at `positions[partition]` when given, else at the end (`from: "end"`: only what
   * is published from now on) or the earliest offset (`"earliest"`: a topic born after
   * the subscription).
   */
  ensure(logTopic: string, from: "end" | "earliest", positions?: Map<number, number>): Promise<void> {
    if (this.byTopic.has(logTopic)) return Promise.resolve();
    let pending = this.#pending.get(logTopic);
    if (!pending) {
      pending = this.#create(logTopic, from, positions).finally(() => this.#pending.delete(logTopic));
      this.#pending.set(logTopic, pending);
    }
    return pending;
  }

  async #create(logTopic: string, from: "end" | "earliest", positions?: Map<number, number>): Promise<void> {
    const level = levelFor(logTopic);
    if (level === null) return;
    const { broker } = this.#deps;
    const partitions = await broker.partitions(logTopic);
    const cursors: PartitionCursor[] = [];
    for (let p = 0; p < partitions; p++) {
      const info = await broker.engine.offsets(logTopic, p);
      const stored = positions?.get(p);
      const next =
        stored !== undefined ? Math.min(Math.max(stored, info.earliestOffset), info.endOffset) : from === "end" ? info.endOffset : info.earliestOffset;
      cursors.push(new PartitionCursor({ ...this.#deps, target: this.#target, logTopic, partition: p, level, next }));
    }
    if (this.byTopic.has(logTopic)) return;
    this.byTopic.set(logTopic, cursors);
    for (const c of cursors) this.#target.positionChanged(c);
    if (this.running) for (const c of cursors) c.start();
  }

  drop(logTopic: string): void {
    const cursors = this.byTopic.get(logTopic);
    if (!cursors) return;
    for (const c of cursors) c.close();
    this.byTopic.delete(logTopic);
  }

  startAll(): void {
    this.running = true;
    for (const cursors of this.byTopic.values()) for (const c of cursors) c.start();
  }

  stopAll(): void {
    this.running = false;
    for (const cursors of this.byTopic.values()) for (const c of cursors) c.stop();
  }

  closeAll(): void {
    this.running = false;
    for (const cursors of this.byTopic.values()) for (const c of cursors) c.close();
    this.byTopic.clear();
  }

  resumeAll(): void {
    for (const cursors of this.byTopic.values()) for (const c of cursors) c.resume();
  }

  *all(): IterableIterator<PartitionCursor> {
    for (const cursors of this.byTopic.values()) yield* cursors;
  }
}
