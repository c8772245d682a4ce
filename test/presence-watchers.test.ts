/**
 * Presence end to end: real SDK clients in their own processes subscribe to a topic (and
 * so are present on it) while other processes watch it with `client.presence(topic)`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@tributary/client";
import { ConsumerProcess, waitFor, type ConsumerEvent } from "./helpers/group-consumer-proc.ts";
import { startSdkTestNode, type SdkTestNode } from "./helpers/sdk-node.ts";

/**
 * The presence session timeout. A reconnect must come back within it for "no leave" to hold
 * (that is the property), so it leaves room for a reconnect on a loaded 2-core CI machine.
 */
const SESSION_MS = 4000;
let node: SdkTestNode;
let procs: ConsumerProcess[] = [];

beforeAll(async () => {
  node = await startSdkTestNode({ presence: { sessionTimeoutMs: SESSION_MS } });
});
afterEach(async () => {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
  procs = [];
});
afterAll(async () => node?.close());

function spawn(clientId: string, options: { watch?: string; subscribe?: boolean; topic?: string }): ConsumerProcess {
  const p = new ConsumerProcess({ url: node.url, topic: options.topic ?? "room-42", clientId, ...options });
  procs.push(p);
  return p;
}

const presenceEvents = (p: ConsumerProcess): ConsumerEvent[] => p.events.filter((e) => e.ev === "presence");
const sawEvent = (p: ConsumerProcess, event: string, clientId: string) => presenceEvents(p).some((e) => e.event === event && e.clientId === clientId);

async function httpMembers(topic: string): Promise<Array<{ clientId: string; user: string | null; node: string; joinedAt: number }>> {
  const res = await fetch(`${node.node.url}/topics/${topic}/presence`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { members: Array<{ clientId: string; user: string | null; node: string; joinedAt: number }> }).members;
}

describe("presence across processes", () => {
  it("every-watcher-sees-joins-leaves-and-a-crashed-client-leaving-after-the-session-timeout", async () => {
    const watchers = [spawn("w1", { watch: "room-42", subscribe: false }), spawn("w2", { watch: "room-42", subscribe: false })];
    await waitFor(() => watchers.every((w) => w.events.some((e) => e.ev === "state" && e.state === "connected")), "watchers connected", 30_000);
    // No wait for the watch itself: a member present before the watch is registered is in its reply (a join too).
    const alice = spawn("alice", {});
    const bob = spawn("bob", {});
    await waitFor(() => watchers.every((w) => sawEvent(w, "join", "alice") && sawEvent(w, "join", "bob")), "joins seen by every watcher", 30_000);
    expect(presenceEvents(watchers[0]!).find((e) => e.clientId === "alice")!.user).toBe("user-alice");
    const members = await httpMembers("room-42");
    expect(members.map((m) => m.clientId).sort()).toEqual(["alice", "bob"]);
    expect(members.every((m) => m.node === node.node.nodeId)).toBe(true);

    // a graceful close leaves at once
    const closedAt = Date.now();
    await alice.close();
    await waitFor(() => watchers.every((w) => sawEvent(w, "leave", "alice")), "alice's leave");
    expect(Date.now() - closedAt).toBeLessThan(SESSION_MS);
    for (const w of watchers) expect(presenceEvents(w).find((e) => e.event === "leave" && e.clientId === "alice")!.reason).toBe("leave");

    // a crash leaves after the session timeout
    bob.kill();
    const killedAt = Date.now();
    await waitFor(() => watchers.every((w) => sawEvent(w, "leave", "bob")), "bob's leave", 10_000);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(SESSION_MS - 300);
    for (const w of watchers) {
      expect(presenceEvents(w).find((e) => e.event === "leave" && e.clientId === "bob")!.reason).toBe("timeout");
      // exactly one join and one leave per client: no flapping
      expect(presenceEvents(w).map((e) => `${e.event}:${e.clientId}`).sort()).toEqual(["join:alice", "join:bob", "leave:alice", "leave:bob"]);
    }
    expect(await httpMembers("room-42")).toEqual([]);
  });

  it("reconnects-of-members-and-watchers-cause-no-leave-or-join-and-keep-joined-at", async () => {
    const watcher = spawn("w3", { watch: "room-7", subscribe: false });
    const carol = spawn("carol", { topic: "room-7" });
    await waitFor(() => sawEvent(watcher, "join", "carol"), "carol's join", 30_000);
    const [before] = await httpMembers("room-7");
    // an in-process watcher too, to check members() and the event API directly
    const client = connect(node.url, { minReconnectDelay: 50, maxReconnectDelay: 200 });
    const presence = client.presence("room-7");
    const inProcess: string[] = [];
    presence.on("join", (m) => inProcess.push(`join:${m.clientId}`));
    presence.on("leave", (m) => inProcess.push(`leave:${m.clientId}:${m.reason}`));
    await waitFor(() => inProcess.includes("join:carol"), "in-process watcher synced");
    expect((await presence.members()).map((m) => m.clientId)).toEqual(["carol"]);

    carol.send("drop");
    watcher.send("drop");
    client.dropConnection();
    await waitFor(() => carol.events.filter((e) => e.ev === "state" && e.state === "connected").length === 2, "carol reconnected");
    await waitFor(() => watcher.events.filter((e) => e.ev === "state" && e.state === "connected").length === 2, "watcher reconnected");
    const reconnectedAt = Date.now(); // carol's old connection, gone by now, was last seen before this
    // The session timeout of carol's old connection passes, then a sweep runs: had her
    // reconnect not kept her present, she would leave here. (The property is about time: the
    // wait is for that deadline to pass, and the sweep is run, not hoped for.)
    await waitFor(() => Date.now() > reconnectedAt + SESSION_MS, "the session timeout of carol's old connection to pass", 10_000);
    await node.node.presence.sweep();
    // A later join reaches every watcher after any leave that sweep sent (one ordered stream per watcher).
    spawn("marker", { topic: "room-7" });
    await waitFor(() => sawEvent(watcher, "join", "marker") && inProcess.includes("join:marker"), "the marker's join");
    expect(presenceEvents(watcher).map((e) => `${e.event}:${e.clientId}`)).toEqual(["join:carol", "join:marker"]);
    expect(inProcess).toEqual(["join:carol", "join:marker"]);
    const after = (await httpMembers("room-7")).find((m) => m.clientId === "carol");
    expect(after).toEqual(before); // same entry, same joinedAt

    // a real leave after all that is still seen, once
    await carol.close();
    await waitFor(() => sawEvent(watcher, "leave", "carol") && inProcess.includes("leave:carol:leave"), "carol's leave");
    presence.close();
    await client.close();
  });
});
