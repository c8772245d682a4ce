/**
 * MQTT shared subscriptions as consumer groups (docs/mqtt.md, "Shared subscriptions"):
 * MQTT.js members (v5 and v3.1.1) and SDK clients in one group over a real node; the
 * group as an operator sees it over HTTP.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type TributaryClient } from "@tributary/client";
import type { IClientOptions, MqttClient } from "mqtt";
import type { GroupDescription, GroupListing } from "../server/src/groups/index.ts";
import { describeGroup } from "./helpers/groups.ts";
import { closeAndWait, collect, connectClient, endClient, flushLog, roundTrip, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor } from "./helpers/wait.ts";

const BIN = fileURLToPath(new URL("../server/bin/tributary.mjs", import.meta.url));
let node: MqttTestNode;
const mqttClients: MqttClient[] = [];
const sdkClients: TributaryClient[] = [];
const enc = new TextEncoder();

beforeAll(async () => {
  node = await startMqttTestNode({}, { defaultPartitions: 6 });
});
afterAll(async () => {
  await Promise.all(mqttClients.map((c) => endClient(c, true)));
  await Promise.all(sdkClients.map((c) => c.close()));
  await node?.close();
});

async function device(clientId: string, options: IClientOptions = {}, before?: (c: MqttClient) => void): Promise<MqttClient> {
  const c = await connectClient(node.tcpUrl, { clientId, protocolVersion: 5, ...options }, before);
  mqttClients.push(c);
  return c;
}

/** Kills the client's socket without DISCONNECT (an abrupt network loss). */
function cutSocket(c: MqttClient): void {
  (c.stream as unknown as { destroy(): void }).destroy();
}

const until = (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> => waitFor(check, { what, timeoutMs, intervalMs: 25 });

/**
 * Produces records keyed by MQTT topics `<topic>/d<k>` (value `<topic>/d<k>:<seq>`, unique)
 * straight into the log, remembering each value's (partition, offset).
 */
class DeviceFeed {
  readonly where = new Map<string, { p: number; o: number }>();
  readonly end = new Map<number, number>();
  #seq = 0;
  constructor(
    readonly topic: string,
    readonly keys: number,
  ) {}

  async produce(count: number): Promise<void> {
    const records = Array.from({ length: count }, () => {
      const n = this.#seq++;
      const key = `${this.topic}/d${n % this.keys}`;
      return { key, value: `${key}:${n}` };
    });
    const acks = await node.node.broker.produce(
      this.topic,
      records.map((r) => ({ key: enc.encode(r.key), value: enc.encode(r.value) })),
    );
    acks.forEach((a, i) => {
      this.where.set(records[i]!.value, { p: a.partition, o: a.offset });
      this.end.set(a.partition, Math.max(this.end.get(a.partition) ?? 0, a.offset + 1));
    });
  }

  get produced(): number {
    return this.#seq;
  }
}

async function stableWith(group: string, members: number, each: number): Promise<GroupDescription> {
  let d: GroupDescription | undefined;
  await until(`group ${group} Stable with ${members} members of ${each} partitions`, async () => {
    try {
      d = await describeGroup(node.node, group);
    } catch {
      return false;
    }
    return d.state === "Stable" && d.members.length === members && d.members.every((m) => m.assignment.length === each);
  });
  return d!;
}

function partitionsOf(d: GroupDescription, clientId: string): number[] {
  return d.members.find((m) => m.clientId === clientId)!.assignment.map((tp) => tp.partition);
}

describe("$share/<group>/<filter> is a consumer group", () => {
  it("three MQTT members (v5 and v3.1.1) split six partitions two each, and each record goes to exactly one member, the owner of its partition", async () => {
    await node.node.broker.createTopic("sh-split", { partitions: 6 });
    const ids = ["split-v5-a", "split-v311", "split-v5-b"];
    const members = await Promise.all(ids.map((id, i) => device(id, { protocolVersion: i === 1 ? 4 : 5 })));
    const gots = members.map((m) => collect(m));
    for (const m of members) await m.subscribeAsync("$share/split/sh-split/#", { qos: 1 });
    const d = await stableWith("split", 3, 2);
    expect(d.members.map((m) => m.clientId).sort()).toEqual([...ids].sort());

    const feed = new DeviceFeed("sh-split", 24);
    await feed.produce(600);
    await until("600 records delivered", () => gots.reduce((n, g) => n + g.messages.length, 0) >= 600);
    // each partition's marker reached its owner after everything before it; each member's connection delivered what it was sent
    await flushLog(node, "sh-split/marker", gots, { any: true });
    await Promise.all(members.map((m) => roundTrip(m)));

    const seen = new Map<string, number>();
    gots.forEach((g, i) => {
      const owned = partitionsOf(d, ids[i]!);
      expect(owned).toHaveLength(2);
      const from = new Set<number>();
      for (const m of g.messages) {
        seen.set(m.payload, (seen.get(m.payload) ?? 0) + 1);
        from.add(feed.where.get(m.payload)!.p);
      }
      expect([...from].sort()).toEqual(owned); // records of its own two partitions only
    });
    expect(seen.size).toBe(600);
    expect([...seen.values()].every((n) => n === 1)).toBe(true); // once each while the group is stable
  });

  it("a member whose connection dies loses its partitions after its session timeout, and the new owners continue from its last commit with no record lost", async () => {
    await node.node.broker.createTopic("sh-move", { partitions: 6 });
    const ids = ["move-0", "move-1", "victim"];
    const members = await Promise.all(
      ids.map((id) => device(id, { clean: false, properties: { sessionExpiryInterval: 3 } })), // group session timeout = 3 s
    );
    const gots = members.map((m) => collect(m));
    for (const m of members) await m.subscribeAsync("$share/move/sh-move/#", { qos: 1 });
    const before = await stableWith("move", 3, 2);
    const victimPartitions = partitionsOf(before, "victim");
    const victimId = before.members.find((m) => m.clientId === "victim")!.memberId;

    const feed = new DeviceFeed("sh-move", 24);
    let producing = true;
    const stream = (async () => {
      while (producing) {
        await feed.produce(20);
        await new Promise((r) => setTimeout(r, 40)); // pacing a steady trickle, not a synchronisation
      }
    })();
    await until("the victim receives records", () => gots[2]!.messages.length > 50);
    // It acknowledges nothing more; its last acknowledged prefix is committed within a commit interval, long before
    // its session timeout. The offsets the new owners start from: the group's commits when the victim is removed.
    const committedAtRemoval = new Promise<Map<number, number | null>>((resolve, reject) => {
      const off = node.node.groups.instrumentation.on("group.leave", (e) => {
        if (e.payload.group !== "move" || e.payload.memberId !== victimId) return;
        off();
        describeGroup(node.node, "move").then((d) => resolve(new Map(d.partitions.map((p) => [p.partition, p.committedOffset]))), reject);
      });
    });
    cutSocket(members[2]!);
    const cutAt = Date.now();
    const after = await stableWith("move", 2, 3);
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(2500); // not before the session timeout
    expect(after.members.map((m) => m.clientId).sort()).toEqual(["move-0", "move-1"]);
    const committedAtDeath = await committedAtRemoval;
    // the new owners have taken over: records of every moved partition reach a survivor
    await until("the survivors deliver every moved partition", () =>
      victimPartitions.every((p) => gots.slice(0, 2).some((g) => g.messages.some((m) => feed.where.get(m.payload)?.p === p))),
    );
    producing = false;
    await stream;

    const total = feed.produced;
    await until("every record delivered", () => new Set(gots.flatMap((g) => g.messages.map((m) => m.payload))).size >= total, 15_000);
    for (const [value] of feed.where) expect(gots.some((g) => g.messages.some((m) => m.payload === value))).toBe(true);

    for (const p of victimPartitions) {
      // the survivors' first record of a moved partition is the victim's last committed offset
      const survivorOffsets = gots
        .slice(0, 2)
        .flatMap((g) => g.messages)
        .map((m) => feed.where.get(m.payload)!)
        .filter((w) => w.p === p)
        .map((w) => w.o);
      expect(survivorOffsets.length).toBeGreaterThan(0);
      expect(Math.min(...survivorOffsets)).toBe(committedAtDeath.get(p));
      // and that commit is the victim's acknowledged progress, not where it started
      const victimOffsets = gots[2]!.messages.map((m) => feed.where.get(m.payload)!).filter((w) => w.p === p).map((w) => w.o);
      expect(victimOffsets.length).toBeGreaterThan(0);
      expect(committedAtDeath.get(p)).toBeGreaterThan(Math.min(...victimOffsets));
      expect(committedAtDeath.get(p)).toBeLessThanOrEqual(Math.max(...victimOffsets) + 1);
    }
  });

  it("a persistent session that reconnects within its session timeout stays the same member with the same partitions (no rebalance) and gets what was published meanwhile", async () => {
    await node.node.broker.createTopic("sh-resume", { partitions: 6 });
    const opts = { clean: false, properties: { sessionExpiryInterval: 10 } };
    const other = await device("resume-other");
    const gotOther = collect(other);
    await other.subscribeAsync("$share/resume/sh-resume/#", { qos: 1 });
    const first = await device("resume-me", opts);
    await first.subscribeAsync("$share/resume/sh-resume/#", { qos: 1 });
    const before = await stableWith("resume", 2, 3);
    const me = before.members.find((m) => m.clientId === "resume-me")!;
    await closeAndWait(node, () => cutSocket(first)); // the gateway saw it go before anything is published
    const feed = new DeviceFeed("sh-resume", 24);
    await feed.produce(120); // while it is away: its partitions wait for it
    let gotAgain!: ReturnType<typeof collect>;
    await device("resume-me", opts, (c) => (gotAgain = collect(c))); // delivery starts right after CONNACK
    const mine = new Set(me.assignment.map((tp) => tp.partition));
    const expected = [...feed.where].filter(([, w]) => mine.has(w.p)).map(([v]) => v);
    await until("the records of its partitions", () => gotAgain.messages.length >= expected.length);
    expect(gotAgain.messages.map((m) => m.payload).sort()).toEqual(expected.sort());
    expect(gotOther.messages.some((m) => mine.has(feed.where.get(m.payload)!.p))).toBe(false);
    const after = await describeGroup(node.node, "resume");
    expect(after.generation).toBe(before.generation);
    expect(after.members.find((m) => m.clientId === "resume-me")).toMatchObject({ memberId: me.memberId, assignment: me.assignment });
  });

  it("MQTT devices and an SDK client share one group: the SDK joins group `mixed` on the log topic of `$share/mixed/sh-mixed/#`", async () => {
    await node.node.broker.createTopic("sh-mixed", { partitions: 6 });
    const a = await device("mixed-mqtt-v5");
    const b = await device("mixed-mqtt-v311", { protocolVersion: 4 });
    const gotA = collect(a);
    const gotB = collect(b);
    await a.subscribeAsync("$share/mixed/sh-mixed/#", { qos: 1 });
    await b.subscribeAsync("$share/mixed/sh-mixed/#", { qos: 2 });
    const sdk = connect(node.sdkUrl, { clientId: "mixed-sdk", codec: "string", minReconnectDelay: 20, maxReconnectDelay: 200 });
    sdkClients.push(sdk);
    const sdkGot: Array<{ p: number; v: string }> = [];
    sdk.subscribe<string>("sh-mixed", (m) => void sdkGot.push({ p: m.partition, v: m.value! }), { group: "mixed", autoCommitIntervalMs: 200 });

    const d = await stableWith("mixed", 3, 2);
    expect(d.members.map((m) => m.clientId).sort()).toEqual(["mixed-mqtt-v311", "mixed-mqtt-v5", "mixed-sdk"]);
    expect(d.partitions.every((p) => p.owner !== null)).toBe(true);

    const feed = new DeviceFeed("sh-mixed", 24);
    await feed.produce(300);
    const processed = (): Set<string> => new Set([...gotA.messages, ...gotB.messages].map((m) => m.payload).concat(sdkGot.map((r) => r.v)));
    await until("every record processed", () => processed().size >= 300);
    expect(processed().size).toBe(300);
    expect(sdkGot.length).toBeGreaterThan(0);
    expect(gotA.messages.length).toBeGreaterThan(0);
    expect(gotB.messages.length).toBeGreaterThan(0);
    expect(new Set(sdkGot.map((r) => r.p))).toEqual(new Set(partitionsOf(d, "mixed-sdk")));
    const fromB = new Set(gotB.messages.map((m) => feed.where.get(m.payload)!.p));
    expect(fromB).toEqual(new Set(partitionsOf(d, "mixed-mqtt-v311")));
    expect(gotB.messages.every((m) => m.qos === 2)).toBe(true); // SDK-produced records go out at the subscription's QoS
  });

  it("the groups listing (HTTP and CLI) hides internal mqtt.session.* groups unless asked for them, and shows $share groups", async () => {
    const persistent = await device("listing-persistent", { clean: false, properties: { sessionExpiryInterval: 60 } });
    const got = collect(persistent);
    await persistent.subscribeAsync("sh-listing/#", { qos: 1 });
    const pub = await device("listing-pub");
    await pub.publishAsync("sh-listing/x", "hello", { qos: 1 });
    await got.waitFor(1);
    const list = async (query: string): Promise<string[]> => {
      const res = await fetch(`${node.node.url}/groups${query}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { groups: GroupListing[] }).groups.map((g) => g.group);
    };
    await until("the session position is committed", async () => (await list("?internal=true")).includes("mqtt.session.listing-persistent"));
    const visible = await list("");
    expect(visible.some((g) => g.startsWith("mqtt.session."))).toBe(false);
    expect(visible).toContain("split");

    const cli = async (...args: string[]): Promise<string[]> => {
      const { stdout } = await promisify(execFile)(process.execPath, [BIN, "groups", "list", "--json", ...args, "--url", node.node.url]);
      return (JSON.parse(stdout) as { groups: GroupListing[] }).groups.map((g) => g.group);
    };
    const [plain, internal] = await Promise.all([cli(), cli("--internal")]);
    expect(plain.some((g) => g.startsWith("mqtt.session."))).toBe(false);
    expect(plain).toContain("mixed");
    expect(internal).toContain("mqtt.session.listing-persistent");
  });
});
