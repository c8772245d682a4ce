/**
 * `client.presence(topic)`: who is subscribed to a topic, kept current.
 *
 * The SDK asks the server to `watch` the topic and keeps the member list from the
 * `presence` reply plus `presence_event` frames. After a reconnect it fetches the list again
 * and reports only real differences (a client that left or joined meanwhile), never a
 * leave + join of a client that was present all along.
 */
import type { PresenceEventFrame, PresenceResultFrame } from "../protocol/index.ts";
import { Emitter } from "./emitter.ts";
import type { PresenceEvents, PresenceMember } from "./types.ts";

/** What a presence watch needs from its client. */
export interface PresenceHost {
  /** Sends `presence` {topic, watch} (when connected) and resolves with the reply. */
  query(topic: string, watch: boolean | undefined): Promise<PresenceResultFrame>;
  unwatch(presence: Presence): void;
}

export class Presence extends Emitter<PresenceEvents> {
  readonly topic: string;
  readonly #host: PresenceHost;
  readonly #known = new Map<string, PresenceMember>();
  #closed = false;

  constructor(topic: string, host: PresenceHost) {
    super();
    this.topic = topic;
    this.#host = host;
  }

  /** The clients present on the topic now, fetched from the server (oldest first). */
  async members(): Promise<PresenceMember[]> {
    const reply = await this.#host.query(this.topic, undefined);
    return reply.members.map(copy).sort((a, b) => a.joinedAt - b.joinedAt);
  }

  /** The members as last seen by this watch (no round trip). */
  get known(): PresenceMember[] {
    return [...this.#known.values()].sort((a, b) => a.joinedAt - b.joinedAt);
  }

  /** Stops watching: no more events. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.unwatch(this);
  }

  // ---- used by the client ----------------------------------------------------------------

  /** The full list after (re)watching: emits the differences from what was known. */
  resync(members: PresenceMember[]): void {
    if (this.#closed) return;
    const now = new Map(members.map((m) => [m.clientId, copy(m)]));
    for (const [clientId, m] of this.#known) {
      if (!now.has(clientId)) {
        this.#known.delete(clientId);
        this.emit("leave", { ...m, reason: "timeout" });
      }
    }
    for (const [clientId, m] of now) {
      if (!this.#known.has(clientId)) {
        this.#known.set(clientId, m);
        this.emit("join", m);
      }
    }
  }

  onEvent(frame: PresenceEventFrame): void {
    if (this.#closed) return;
    const member = { clientId: frame.clientId, user: frame.user ?? null, node: frame.node, joinedAt: this.#known.get(frame.clientId)?.joinedAt ?? Date.now() };
    if (frame.event === "join") {
      if (this.#known.has(frame.clientId)) return;
      this.#known.set(frame.clientId, member);
      this.emit("join", member);
    } else {
      if (!this.#known.delete(frame.clientId)) return;
      this.emit("leave", { ...member, reason: frame.reason ?? "leave" });
    }
  }
}

function copy(m: PresenceMember): PresenceMember {
  return { clientId: m.clientId, user: m.user ?? null, node: m.node, joinedAt: m.joinedAt };
}
