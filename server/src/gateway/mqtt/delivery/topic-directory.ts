import type { Broker } from "../../../broker/broker.ts";
import type { Logger } from "../../../logger.ts";
import { levelFor } from "../record-mapping.ts";
import type { CursorSet } from "./cursor-set.ts";

/**
 * The log topics MQTT can see, for subscriptions whose first level is a wildcard (`#`,
 * `+/x`): they read every such topic. Topics created by MQTT publishes through this
 * gateway are noticed at once; topics created otherwise (SDK, HTTP, admin) are found by
 * polling `listTopics()` every 2 s while such subscriptions exist. A topic noticed after a
 * watcher subscribed is read from its earliest offset, so nothing published to it is missed.
 */
export class TopicDirectory {
  readonly #broker: Broker;
  readonly #log: Logger;
  #known: Set<string> | null = null;
  #loading: Promise<Set<string>> | null = null;
  readonly #watchers = new Map<object, CursorSet>();
  #timer: NodeJS.Timeout | null = null;

  constructor(broker: Broker, log: Logger) {
    this.#broker = broker;
    this.#log = log;
  }

  async topics(): Promise<string[]> {
    return [...(await this.#load())];
  }

  #load(): Promise<Set<string>> {
    if (this.#known) return Promise.resolve(this.#known);
    this.#loading ??= this.#broker.listTopics().then((names) => {
      const known = this.#known ?? new Set<string>();
      for (const n of names) if (levelFor(n) !== null) known.add(n);
      this.#known = known;
      this.#loading = null;
      return known;
    });
    return this.#loading;
  }

  /** A log topic is (about to be) written through MQTT. */
  note(logTopic: string): void {
    const known = this.#known;
    if (!known || known.has(logTopic) || this.#watchers.size === 0) return;
    if (levelFor(logTopic) === null) return;
    known.add(logTopic);
    for (const cursors of this.#watchers.values()) {
      cursors.ensure(logTopic, "earliest").catch((err: unknown) => this.#log.warn("mqtt.directory.ensure_failed", { topic: logTopic, error: String(err) }));
    }
  }

  addWatcher(owner: object, cursors: CursorSet): void {
    this.#watchers.set(owner, cursors);
    this.#timer ??= setInterval(() => void this.#poll(), 2000).unref();
  }

  removeWatcher(owner: object): void {
    this.#watchers.delete(owner);
    if (this.#watchers.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  async #poll(): Promise<void> {
    try {
      await this.#load();
      for (const name of await this.#broker.listTopics()) this.note(name);
    } catch (err) {
      this.#log.debug("mqtt.directory.poll_failed", { error: String(err) });
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#watchers.clear();
  }
}
