import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "./clock.ts";
import type { LeaveReason } from "./instrumentation.ts";
import { PresenceRegistry } from "./presence.ts";
import { waitFor } from "../../../test/helpers/group-harness.ts";

let registry: PresenceRegistry;
afterEach(() => registry?.close());

function record(r: PresenceRegistry): string[] {
  const events: string[] = [];
  r.on({
    join: (topic, e) => events.push(`join ${topic} ${e.clientId}`),
    leave: (topic, e, reason: LeaveReason) => events.push(`leave ${topic} ${e.clientId} ${reason}`),
  });
  return events;
}

describe("PresenceRegistry", () => {
  it("lists who is subscribed to a topic and emits join and leave on subscribe and unsubscribe", async () => {
    registry = new PresenceRegistry();
    const events = record(registry);
    await registry.join("chat", { clientId: "alice", user: "u-alice", node: "n1" });
    await registry.join("chat", { clientId: "bob", node: "n2" });
    await registry.join("news", { clientId: "alice", user: "u-alice", node: "n1" });
    const members = await registry.members("chat");
    expect(members.map((m) => [m.clientId, m.user, m.node])).toEqual([
      ["alice", "u-alice", "n1"],
      ["bob", null, "n2"],
    ]);
    expect(members.every((m) => m.joinedAt > 0)).toBe(true);
    expect(await registry.leave("chat", "alice")).toBe(true);
    expect(await registry.leave("chat", "alice")).toBe(false);
    expect((await registry.members("chat")).map((m) => m.clientId)).toEqual(["bob"]);
    expect((await registry.members("news")).map((m) => m.clientId)).toEqual(["alice"]);
    expect(events).toEqual(["join chat alice", "join chat bob", "join news alice", "leave chat alice leave"]);
  });

  it("a client that vanished leaves after the session timeout (real timers)", async () => {
    registry = new PresenceRegistry({ sessionTimeoutMs: 150, sweepIntervalMs: 20 });
    const events = record(registry);
    await registry.join("chat", { clientId: "alice", node: "n1" });
    await registry.join("chat", { clientId: "bob", node: "n1" });
    const started = Date.now();
    const alive = setInterval(() => void registry.heartbeat("chat", "bob"), 30);
    try {
      await waitFor(() => events.includes("leave chat alice timeout"), 3000, "alice to time out");
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect((await registry.members("chat")).map((m) => m.clientId)).toEqual(["bob"]);
      expect(events.filter((e) => e.includes("bob"))).toEqual(["join chat bob"]);
    } finally {
      clearInterval(alive);
    }
  });

  it("a client that reconnects within the session timeout does not flap (no leave, no second join, joinedAt kept)", async () => {
    const clock = new ManualClock();
    registry = new PresenceRegistry({ clock, sessionTimeoutMs: 10_000 });
    const events = record(registry);
    const first = await registry.join("chat", { clientId: "alice", node: "n1" });
    expect(first.rejoined).toBe(false);
    clock.advance(9_000); // connection dropped, no heartbeats
    await registry.sweep();
    const again = await registry.join("chat", { clientId: "alice", node: "n2" });
    expect(again.rejoined).toBe(true);
    expect(again.entry.joinedAt).toBe(first.entry.joinedAt);
    expect(again.entry.node).toBe("n2");
    clock.advance(9_000); // the reconnect refreshed the session
    await registry.sweep();
    expect(events).toEqual(["join chat alice"]);
    clock.advance(2_000);
    await registry.sweep();
    expect(events).toEqual(["join chat alice", "leave chat alice timeout"]);
    expect(await registry.members("chat")).toEqual([]);
  });

  it("emits presence.join and presence.leave instrumentation events", async () => {
    registry = new PresenceRegistry();
    const seen: string[] = [];
    registry.instrumentation.on("*", (e) => seen.push(e.type));
    await registry.join("chat", { clientId: "alice", node: "n1" });
    await registry.leave("chat", "alice");
    await waitFor(() => seen.length === 2, 1000, "events");
    expect(seen).toEqual(["presence.join", "presence.leave"]);
    expect(registry.instrumentation.counts()).toMatchObject({ "presence.join": 1, "presence.leave": 1 });
  });
});
