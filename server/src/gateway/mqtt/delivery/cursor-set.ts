import type { Broker } from "../../../broker/broker.ts";
import type { DeliveryEnv } from "../../../broker/delivery/delivery-cursor.ts";
import { isTributaryError, type TributaryError } from "../../../errors.ts";
import type { Logger } from "../../../logger.ts";
import { levelFor } from "../record-mapping.ts";
import { MqttCursor, type DeliveryTarget } from "./mqtt-cursor.ts";
import { LazyMap } from "../../../lazy-collections.ts";

export interface CursorDeps {
  broker: Broker;
  /** The broker's delivery (shared feeds) the cursors run on. */
  delivery: DeliveryEnv;
  log: Logger;
}

/** A stored position: offset in the history named by `epoch` (null = stored before positions had epochs). */
export interface StoredPosition {
  offset: number;
  epoch: string | null;
}

/** How often a set whose topic was deleted looks for it again, besides this node's topic events (ms). */
const TOPIC_POLL_MS = 2000;

/**
 * The cursors of one delivery target, one per partition of every log topic it reads.
 *
 * MQTT subscriptions are filters, not positions in one topic's history: when a log topic is
 * deleted the set drops its cursors and, once the topic exists again (created through this
 * node, or seen by polling), reads it from the earliest offset of its new epoch.
 */
export class CursorSet {
  readonly byTopic: Map<string, MqttCursor[]> = new LazyMap();
  running = false;
  readonly #deps: CursorDeps;
  readonly #target: DeliveryTarget;
  readonly #pending: Map<string, Promise<void>> = new LazyMap();
  /** Deleted topics waiting to exist again: topic → stop waiting. */
  readonly #awaiting: Map<string, () => void> = new LazyMap();

  constructor(deps: CursorDeps, target: DeliveryTarget) {
    this.#deps = deps;
    this.#target = target;
  }

  /**
   * Cursors for every partition of `logTopic` (creating the topic if allowed). New cursors
   * start at `positions[partition]` when given and still valid, else at the end (`from:
   * "end"`: only what is published from now on) or the earliest offset (`"earliest"`: a
   * topic born after the subscription). A stored position of another epoch is stale (the
   * topic was re-created, or the storage lost a tail): it starts at the earliest offset of
   * the current epoch, logged as `mqtt.position.stale_epoch`.
   */
  ensure(logTopic: string, from: "end" | "earliest", positions?: Map<number, StoredPosition>): Promise<void> {
    if (this.byTopic.has(logTopic)) return Promise.resolve();
    let pending = this.#pending.get(logTopic);
    if (!pending) {
      pending = this.#create(logTopic, from, positions).finally(() => this.#pending.delete(logTopic));
      this.#pending.set(logTopic, pending);
    }
    return pending;
  }

  async #create(logTopic: string, from: "end" | "earliest", positions?: Map<number, StoredPosition>): Promise<void> {
    const level = levelFor(logTopic);
    if (level === null) return;
    const { broker, delivery, log } = this.#deps;
    const partitions = await broker.partitions(logTopic);
    const cursors: MqttCursor[] = [];
    for (let p = 0; p < partitions; p++) {
      const info = await broker.offsets(logTopic, p);
      const stored = positions?.get(p);
      let next: number;
      if (stored === undefined) next = from === "end" ? info.endOffset : info.earliestOffset;
      else if (stored.epoch !== null && stored.epoch !== info.epoch) {
        log.info("mqtt.position.stale_epoch", { topic: logTopic, partition: p, stored: stored.offset, storedEpoch: stored.epoch, epoch: info.epoch, resumeAt: info.earliestOffset });
        next = info.earliestOffset;
      } else next = Math.min(Math.max(stored.offset, info.earliestOffset), info.endOffset);
      cursors.push(new MqttCursor({ target: this.#target, env: delivery, logTopic, partition: p, level, epoch: info.epoch, next, atEnd: next >= info.endOffset }));
    }
    if (this.byTopic.has(logTopic)) return;
    this.byTopic.set(logTopic, cursors);
    for (const c of cursors) this.#target.positionChanged(c);
    if (this.running) for (const c of cursors) c.start();
  }

  /**
   * A cursor's delivery ended. The topic is gone (deleted): drop its cursors and read it
   * again from its new start once it exists. Anything else: logged, and the cursor tries
   * again from its position a moment later.
   */
  cursorFailed(cursor: MqttCursor, err: TributaryError): void {
    const { log } = this.#deps;
    if (this.byTopic.get(cursor.logTopic)?.includes(cursor) !== true) return;
    if (err.code === "UNKNOWN_TOPIC" || err.code === "UNKNOWN_PARTITION") {
      log.info("mqtt.topic.gone", { topic: cursor.logTopic, partition: cursor.partition, offset: cursor.next, epoch: cursor.epoch });
      this.drop(cursor.logTopic);
      this.#awaitTopic(cursor.logTopic);
      return;
    }
    log.error("mqtt.cursor.failed", { topic: cursor.logTopic, partition: cursor.partition, offset: cursor.next, code: err.code, error: err.message });
    const retry = setTimeout(() => {
      if (this.running && this.byTopic.get(cursor.logTopic)?.includes(cursor)) cursor.start();
    }, TOPIC_POLL_MS);
    retry.unref();
  }

  /** Waits until `logTopic` exists again, then reads it from its earliest offset. */
  #awaitTopic(logTopic: string): void {
    if (this.#awaiting.has(logTopic)) return;
    const { broker, log } = this.#deps;
    let timer: NodeJS.Timeout | null = null;
    const stop = (): void => {
      unlisten();
      if (timer) clearTimeout(timer);
      this.#awaiting.delete(logTopic);
    };
    const check = async (): Promise<void> => {
      try {
        await broker.describeTopic(logTopic);
      } catch (err) {
        if (!isTributaryError(err, "UNKNOWN_TOPIC")) log.warn("mqtt.topic.check_failed", { topic: logTopic, error: String(err) });
        return;
      }
      if (!this.#awaiting.has(logTopic)) return;
      stop();
      this.ensure(logTopic, "earliest").catch((err: unknown) => {
        log.warn("mqtt.topic.resume_failed", { topic: logTopic, error: String(err) });
        this.#awaitTopic(logTopic);
      });
    };
    const poll = (): void => {
      timer = setTimeout(() => void check().finally(() => this.#awaiting.has(logTopic) && poll()), TOPIC_POLL_MS);
      timer.unref();
    };
    const unlisten = broker.onTopicEvent((e) => {
      if (e.topic === logTopic && e.kind === "created") void check();
    });
    this.#awaiting.set(logTopic, stop);
    poll();
  }

  drop(logTopic: string): void {
    this.#awaiting.get(logTopic)?.();
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
    for (const stop of [...this.#awaiting.values()]) stop();
    for (const cursors of this.byTopic.values()) for (const c of cursors) c.close();
    this.byTopic.clear();
  }

  resumeAll(): void {
    for (const cursors of this.byTopic.values()) for (const c of cursors) c.resume();
  }

  *all(): IterableIterator<MqttCursor> {
    for (const cursors of this.byTopic.values()) yield* cursors;
  }
}
