import { describe, expect, it } from "vitest";
import { DecisionCache } from "./decision-cache.ts";
import { createIdentity, type Identity } from "./identity.ts";
import { PolicyAuthorizer } from "./policy-authorizer.ts";
import { ALL_GROUPS, DENY_ALL_POLICY, NO_GROUPS, OPEN_POLICY, PUBSUB_POLICY, groupRules, topicRules, type Policy } from "./policy.ts";

function policy(p: { pub?: string[]; sub?: string[]; deny?: string[]; groups?: string[]; presence?: string[] | "subscribe"; admin?: boolean }): Policy {
  return {
    admin: p.admin ?? false,
    publish: topicRules(p.pub ?? [], p.deny ?? []),
    subscribe: topicRules(p.sub ?? [], p.deny ?? []),
    presence: p.presence === undefined || p.presence === "subscribe" ? "subscribe" : topicRules(p.presence),
    groups: p.groups ? groupRules(p.groups) : NO_GROUPS,
  };
}

function setup(clock = { now: 1_000_000 }) {
  const policies = new Map<Identity, Policy>();
  const authorizer = new PolicyAuthorizer((id) => policies.get(id) ?? DENY_ALL_POLICY, { now: () => clock.now });
  const identity = (p: Policy, expiresAt: number | null = null) => {
    const id = createIdentity({ kind: "jwt", subject: "alice", clientId: "c1", expiresAt });
    policies.set(id, p);
    return id;
  };
  return { authorizer, identity, policies, clock };
}

describe("PolicyAuthorizer: publish and produce", () => {
  const { authorizer: a, identity } = setup();
  const sensors = identity(policy({ pub: ["sensor-data/#"] }));
  const device = identity(policy({ pub: ["sensor-data/d1/+"] }));

  it("a sensor-data/# grant allows every MQTT topic of the log topic and nothing else", () => {
    expect(a.canPublish(sensors, "sensor-data/d1/temp")).toBe(true);
    expect(a.canPublish(sensors, "sensor-data")).toBe(true);
    expect(a.canPublish(sensors, "sensor-data-2/x")).toBe(false);
    expect(a.canPublish(sensors, "other/x")).toBe(false);
  });

  it("a sensor-data/# grant allows producing to log topic sensor-data with any key", () => {
    expect(a.canProduce(sensors, "sensor-data", null)).toBe(true);
    expect(a.canProduce(sensors, "sensor-data", new Uint8Array([0xff, 0xfe]))).toBe(true);
    expect(a.canProduce(sensors, "sensor-data", "whatever")).toBe(true);
    expect(a.canProduce(sensors, "other", null)).toBe(false);
  });

  it("a narrower grant allows producing only records whose key is an allowed MQTT topic of that log topic", () => {
    expect(a.canProduce(device, "sensor-data", "sensor-data/d1/temp")).toBe(true);
    expect(a.canProduce(device, "sensor-data", new TextEncoder().encode("sensor-data/d1/hum"))).toBe(true);
    expect(a.canProduce(device, "sensor-data", "sensor-data/d2/temp")).toBe(false);
    expect(a.canProduce(device, "sensor-data", null)).toBe(false);
    expect(a.canProduce(device, "sensor-data", "sensor-data/d1")).toBe(false);
    // a key naming another log topic's space does not count, even if allowed there
    expect(a.canProduce(identity(policy({ pub: ["a/#", "b/x"] })), "a", "b/x")).toBe(true); // whole of a allowed
    expect(a.canProduce(identity(policy({ pub: ["b/x"] })), "a", "b/x")).toBe(false);
  });

  it("refuses invalid topic names instead of throwing", () => {
    const all = identity(PUBSUB_POLICY);
    expect(a.canPublish(all, "a/+")).toBe(false);
    expect(a.canPublish(all, "a/#")).toBe(false);
    expect(a.canPublish(all, "")).toBe(false);
    expect(a.canPublish(all, "x".repeat(300) + "\u00e9/y")).toBe(false); // first level too long to map to a log topic
  });
});

describe("PolicyAuthorizer: subscribe (filter within pattern) and consume", () => {
  const { authorizer: a, identity } = setup();
  const sensors = identity(policy({ sub: ["sensor-data/#"] }));
  const oneLevel = identity(policy({ sub: ["sensor-data/+"] }));
  const withDeny = identity(policy({ sub: ["#"], deny: ["secret/#"] }));

  it("allows a filter only when every topic it can match is granted", () => {
    expect(a.canSubscribe(sensors, "sensor-data/+/temp")).toBe(true);
    expect(a.canSubscribe(sensors, "sensor-data/#")).toBe(true);
    expect(a.canSubscribe(sensors, "sensor-data")).toBe(true);
    expect(a.canSubscribe(sensors, "#")).toBe(false);
    expect(a.canSubscribe(sensors, "+/temp")).toBe(false);
    expect(a.canSubscribe(oneLevel, "sensor-data/d1")).toBe(true);
    expect(a.canSubscribe(oneLevel, "sensor-data/#")).toBe(false);
    expect(a.canSubscribe(oneLevel, "sensor-data/+/temp")).toBe(false);
  });

  it("judges a $share subscription by its inner filter", () => {
    expect(a.canSubscribe(sensors, "$share/workers/sensor-data/+/temp")).toBe(true);
    expect(a.canSubscribe(sensors, "$share/workers/#")).toBe(false);
    expect(a.canSubscribe(sensors, "$share/workers")).toBe(false);
    expect(a.canSubscribe(sensors, "$share/w+/sensor-data/#")).toBe(false);
  });

  it("refuses a filter that could reach a denied topic", () => {
    expect(a.canSubscribe(withDeny, "public/#")).toBe(true);
    expect(a.canSubscribe(withDeny, "#")).toBe(false);
    expect(a.canSubscribe(withDeny, "+/x")).toBe(false);
    expect(a.canSubscribe(withDeny, "secret/x")).toBe(false);
  });

  it("$-topics need a $ pattern: # does not grant $SYS", () => {
    const everything = identity(policy({ sub: ["#"] }));
    expect(a.canSubscribe(everything, "$SYS/broker/uptime")).toBe(false);
    expect(a.canSubscribe(identity(policy({ sub: ["$SYS/#"] })), "$SYS/broker/uptime")).toBe(true);
  });

  it("consuming a whole log topic needs <topic>/#; a key filter needs that filter", () => {
    expect(a.canConsume(sensors, "sensor-data")).toBe(true);
    expect(a.canConsume(sensors, "sensor-data/+/temp")).toBe(true);
    const d1 = identity(policy({ sub: ["sensor-data/d1/#"] }));
    expect(a.canConsume(d1, "sensor-data")).toBe(false);
    expect(a.canConsume(d1, "sensor-data/d1/+")).toBe(true);
    expect(a.canConsume(d1, "sensor-data/+/temp")).toBe(false);
  });

  it("refuses a wildcard first level or an invalid filter in log space", () => {
    const all = identity(PUBSUB_POLICY);
    expect(a.canConsume(all, "+/temp")).toBe(false);
    expect(a.canConsume(all, "#")).toBe(false);
    expect(a.canConsume(all, "a/#/b")).toBe(false);
    expect(a.canSubscribe(all, "a/#/b")).toBe(false);
  });

  it("escaped log topic names are granted by the MQTT level they stand for", () => {
    const sys = identity(policy({ sub: ["$SYS/#"] }));
    expect(a.canConsume(sys, "__24SYS")).toBe(true); // the log topic of MQTT $SYS/...
    expect(a.canConsume(sensors, "__24SYS")).toBe(false);
    const spaced = identity(policy({ sub: ["my topic/#"] }));
    expect(a.canConsume(spaced, "_my_20topic")).toBe(true);
    // keys of an escaped topic are not its MQTT topics: a key filter needs the whole topic
    expect(a.canConsume(identity(policy({ sub: ["my topic/a"] })), "_my_20topic/a")).toBe(false);
  });

  it("log topics no MQTT level maps to are admin-only", () => {
    const all = identity(PUBSUB_POLICY);
    for (const t of ["_x", "_a_2Fb", "_a_2Bb"]) {
      expect(a.canConsume(all, t), t).toBe(false);
      expect(a.canProduce(all, t, null), t).toBe(false);
      expect(a.canConsume(identity(OPEN_POLICY), t), t).toBe(true);
    }
  });
});

describe("PolicyAuthorizer: internal topics", () => {
  const { authorizer: a, identity } = setup();
  const admin = identity(OPEN_POLICY);
  const everyone = identity(PUBSUB_POLICY);
  const hash = identity(policy({ pub: ["#"], sub: ["#"] }));

  it("only admin may read them; no pattern grants them", () => {
    for (const t of ["__mqtt.sessions", "__mqtt.retained", "__anything"]) {
      expect(a.canConsume(admin, t), t).toBe(true);
      expect(a.canConsume(everyone, t), t).toBe(false);
      expect(a.canConsume(hash, t), t).toBe(false);
      expect(a.canConsume(everyone, `${t}/+`), t).toBe(false);
    }
  });

  it("nobody may produce to, create or delete them, admin included", () => {
    for (const t of ["__mqtt.sessions", "__mqtt.retained"]) {
      expect(a.canProduce(admin, t, "evil"), t).toBe(false);
      expect(a.canProduce(admin, t, null), t).toBe(false);
      expect(a.canManageTopic(admin, t), t).toBe(false);
      expect(a.canPresence(admin, t), t).toBe(false);
    }
    expect(a.canManageTopic(admin, "orders")).toBe(true);
    expect(a.canManageTopic(everyone, "orders")).toBe(false);
  });

  it("follows the node's one rule (broker/internal-topics.ts): __ + two hex digits is not internal", () => {
    // `__41_zz` is not internal, but no MQTT level maps to it either: admin only, and admin may write it
    expect(a.canConsume(everyone, "__41_zz")).toBe(false);
    expect(a.canProduce(everyone, "__41_zz", null)).toBe(false);
    expect(a.canProduce(admin, "__41_zz", null)).toBe(true);
    expect(a.canManageTopic(admin, "__41_zz")).toBe(true);
  });

  it("escaped MQTT levels starting with _ are not internal", () => {
    expect(a.canPublish(everyone, "_private/x")).toBe(true); // log topic __5Fprivate
    expect(a.canProduce(everyone, "__5Fprivate", null)).toBe(true);
    expect(a.canProduce(everyone, "__C3_BC", null)).toBe(true); // "ü"
  });
});

describe("PolicyAuthorizer: groups, presence, admin", () => {
  const { authorizer: a, identity } = setup();

  it("joins groups by name, prefix or *; never internal groups", () => {
    const some = identity(policy({ groups: ["billing", "analytics-*"] }));
    expect(a.canJoinGroup(some, "billing")).toBe(true);
    expect(a.canJoinGroup(some, "analytics-eu")).toBe(true);
    expect(a.canJoinGroup(some, "billing-2")).toBe(false);
    expect(a.canJoinGroup(identity(policy({})), "billing")).toBe(false);
    const any = identity({ ...PUBSUB_POLICY, groups: ALL_GROUPS });
    expect(a.canJoinGroup(any, "x")).toBe(true);
    expect(a.canJoinGroup(any, "mqtt.session.c1")).toBe(false);
    expect(a.canJoinGroup(identity(OPEN_POLICY), "mqtt.session.c1")).toBe(false);
    expect(a.canJoinGroup(any, "")).toBe(false);
  });

  it("presence follows whole-topic read access, or its own patterns", () => {
    const reader = identity(policy({ sub: ["room-42/#", "lobby/x"] }));
    expect(a.canPresence(reader, "room-42")).toBe(true);
    expect(a.canPresence(reader, "lobby")).toBe(false);
    const rooms = identity(policy({ presence: ["room-42", "room-43/#"] }));
    expect(a.canPresence(rooms, "room-42")).toBe(true);
    expect(a.canPresence(rooms, "room-43")).toBe(true); // `#` also matches its parent level
    expect(a.canPresence(rooms, "lobby")).toBe(false);
    expect(a.canPresence(identity(policy({ presence: ["+"] })), "lobby")).toBe(true);
    expect(a.canPresence(identity(policy({ presence: [] })), "room-42")).toBe(false);
  });

  it("admin implies every permission except writing internal topics", () => {
    const admin = identity(OPEN_POLICY);
    expect(a.isAdmin(admin)).toBe(true);
    expect(a.canPublish(admin, "$SYS/x")).toBe(true);
    expect(a.canSubscribe(admin, "#")).toBe(true);
    expect(a.canJoinGroup(admin, "billing")).toBe(true);
    expect(a.isAdmin(identity(PUBSUB_POLICY))).toBe(false);
  });
});

describe("PolicyAuthorizer: revocation reaches cached decisions", () => {
  it("denies everything from the instant the identity expires, cached decisions included", () => {
    const { authorizer: a, identity, clock } = setup();
    const id = identity(policy({ pub: ["t/#"], sub: ["t/#"] }), clock.now + 5000);
    expect(a.canPublish(id, "t/x")).toBe(true);
    expect(a.canSubscribe(id, "t/#")).toBe(true);
    clock.now += 4999;
    expect(a.canPublish(id, "t/x")).toBe(true);
    clock.now += 1;
    expect(a.canPublish(id, "t/x")).toBe(false);
    expect(a.canSubscribe(id, "t/#")).toBe(false);
    expect(a.isAdmin(id)).toBe(false);
  });

  it("invalidate() makes the next check use the new policy", () => {
    const { authorizer: a, identity, policies } = setup();
    const id = identity(policy({ pub: ["t/#"] }));
    expect(a.canPublish(id, "t/x")).toBe(true);
    policies.set(id, policy({ pub: ["u/#"] }));
    expect(a.canPublish(id, "t/x")).toBe(true); // cached until invalidated
    a.invalidate();
    expect(a.canPublish(id, "t/x")).toBe(false);
    expect(a.canPublish(id, "u/x")).toBe(true);
  });

  it("denies an identity the resolver does not know, and one whose resolver throws", () => {
    const a = new PolicyAuthorizer(() => {
      throw new Error("boom");
    });
    const id = createIdentity({ kind: "anonymous", subject: null, clientId: null, expiresAt: null });
    expect(a.canPublish(id, "t")).toBe(false);
    const b = setup().authorizer;
    expect(b.canSubscribe(id, "t")).toBe(false);
  });
});

describe("DecisionCache", () => {
  it("stays within its entry bound, dropping the oldest first", () => {
    const cache = new DecisionCache({ maxEntries: 3, maxKeyChars: 1000 });
    for (const k of ["a", "b", "c", "d"]) cache.set(k, true);
    expect(cache.size).toBe(3);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("d")).toBe(true);
  });

  it("stays within its character bound and does not cache huge keys", () => {
    const cache = new DecisionCache({ maxEntries: 100, maxKeyChars: 40 });
    cache.set("x".repeat(11), true); // > 40/4: not cached
    expect(cache.size).toBe(0);
    for (let i = 0; i < 10; i++) cache.set(`key-${i}-xx`, i % 2 === 0);
    expect(cache.keyChars).toBeLessThanOrEqual(40);
    expect(cache.get("key-9-xx")).toBe(false);
    expect(cache.get("key-0-xx")).toBeUndefined();
  });

  it("a per-identity cache never outgrows its limits however many topics are asked", () => {
    const a = new PolicyAuthorizer(() => PUBSUB_POLICY, { cache: { maxEntries: 8, maxKeyChars: 256 } });
    const id = createIdentity({ kind: "anonymous", subject: null, clientId: null, expiresAt: null });
    for (let i = 0; i < 2000; i++) expect(a.canPublish(id, `t/${i}`)).toBe(true);
    // no observable size: the bound is DecisionCache's, tested above; this proves no throw and steady answers
    expect(a.canPublish(id, "t/0")).toBe(true);
  });
});
