import type { PresenceEventFrame, PresenceResultFrame } from "../protocol/index.ts";
import { TributaryClientError } from "./errors.ts";
import { Presence, type PresenceHost } from "./presence.ts";
import type { RequestChannel } from "./request-channel.ts";

/** What presence watches need from their client. */
export interface PresenceWatchesHost {
  connected(): boolean;
  requests: RequestChannel;
  /** Timeout of presence requests (the client's connectTimeout). */
  requestTimeoutMs: number;
  reportError(err: TributaryClientError): void;
}

/**
 * The client's presence watches by topic (internal to `TributaryClient`): one server-side
 * `watch` per topic while any `Presence` of it is open, sent again after every reconnect.
 */
export class PresenceWatches {
  readonly #presences = new Map<string, Set<Presence>>();
  readonly #host: PresenceWatchesHost;
  readonly #presenceHost: PresenceHost;

  constructor(host: PresenceWatchesHost) {
    this.#host = host;
    this.#presenceHost = {
      query: async (topic, watch) => {
        if (!host.connected()) throw new TributaryClientError("UNAVAILABLE", "not connected", { topic });
        return (await host.requests.request({ op: "presence", id: 0, topic, ...(watch !== undefined ? { watch } : {}) }, host.requestTimeoutMs)) as PresenceResultFrame;
      },
      unwatch: (presence) => {
        const set = this.#presences.get(presence.topic);
        if (!set?.delete(presence) || set.size > 0) return;
        this.#presences.delete(presence.topic);
        if (host.connected()) void this.#presenceHost.query(presence.topic, false).catch(() => undefined);
      },
    };
  }

  create(topic: string): Presence {
    const presence = new Presence(topic, this.#presenceHost);
    let set = this.#presences.get(topic);
    if (!set) this.#presences.set(topic, (set = new Set()));
    set.add(presence);
    if (this.#host.connected()) this.#watch(topic, [presence]);
    return presence;
  }

  /** Connected: every watched topic is watched again (members resynced). */
  rewatchAll(): void {
    for (const [topic, set] of this.#presences) this.#watch(topic, [...set]);
  }

  onEvent(frame: PresenceEventFrame): void {
    for (const presence of this.#presences.get(frame.topic) ?? []) presence.onEvent(frame);
  }

  #watch(topic: string, presences: Presence[]): void {
    this.#presenceHost.query(topic, true).then(
      (reply) => {
        for (const presence of presences) presence.resync(reply.members);
      },
      (err: TributaryClientError) => {
        if (err.code !== "UNAVAILABLE" && err.code !== "TIMEOUT") this.#host.reportError(err);
      },
    );
  }
}
