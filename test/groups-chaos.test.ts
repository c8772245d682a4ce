/**
 * Chaos: member processes (real SDK clients) join, leave gracefully, drop their connection
 * or get SIGKILLed at random while keyed records are produced. At the end: every record was
 * processed at least once, each process saw every partition it owned as one gapless run of
 * offsets per assignment (so per-key order held), the final committed offsets equal the end
 * offsets, and a record is processed more than once only because a member was SIGKILLed
 * after processing it and before committing it (its uncommitted window, known from the
 * commits the coordinator accepted): leaves commit first, and a member whose connection
 * dropped commits its processed window before its partitions move
 * (docs/consumer-groups.md, "A member whose connection dropped").
 *
 * `npm test` runs a shorter honest version (15 s, 20,000 records); the full size
 * (60 s, 100,000 records) runs with CHAOS_LONG=1:
 *   CHAOS_LONG=1 npx vitest run test/groups-chaos.test.ts
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { CommitRequest } from "../server/src/groups/index.ts";
import { ConsumerProcess, waitFor } from "./helpers/group-consumer-proc.ts";
import { KeyedProducer, describeGroup } from "./helpers/groups.ts";
import { startSdkTestNode, type SdkTestNode } from "./helpers/sdk-node.ts";

const LONG = process.env.CHAOS_LONG === "1";
const DURATION_MS = LONG ? 60_000 : 15_000;
const RECORDS = LONG ? 100_000 : 20_000;
const MAX_MEMBERS = 5;
const SESSION_MS = 1500;
const PARTITIONS = 6;

let node: SdkTestNode;
const procs: ConsumerProcess[] = [];

beforeAll(async () => {
  node = await startSdkTestNode();
  await node.node.broker.createTopic("chaos", { partitions: PARTITIONS });
});
afterAll(async () => {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
  await node?.close();
});

/** Mulberry32: a seeded PRNG so a failing run can be replayed with CHAOS_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

it(`${LONG ? "60 s / 100,000" : "short mode 15 s / 20,000 (CHAOS_LONG=1 for 60 s / 100,000)"} records: members join, leave, drop and crash at random; every record processed, per-key order held per member run, committed == end`, async () => {
  const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
  const random = prng(seed);
  let n = 0;
  const spawn = () => {
    const p = new ConsumerProcess({ url: node.url, topic: "chaos", group: "chaos-g", clientId: `m${n++}`, sessionTimeoutMs: SESSION_MS, autoCommitIntervalMs: 300 });
    procs.push(p);
    return p;
  };
  const alive = () => procs.filter((p) => p.alive && !p.events.some((e) => e.ev === "closed"));
  // Every commit the coordinator accepted, by memberId: what each member had committed when it died.
  const commits: Array<{ memberId: string; offsets: CommitRequest["offsets"] }> = [];
  const groups = node.node.groups;
  const commit = groups.commit.bind(groups);
  groups.commit = async (group, request) => {
    await commit(group, request);
    if (group === "chaos-g") commits.push({ memberId: request.memberId, offsets: request.offsets });
  };
  for (let i = 0; i < MAX_MEMBERS; i++) spawn();
  await waitFor(() => procs.every((p) => p.partitions.length > 0), "first assignment", 30_000);

  const producer = new KeyedProducer(node.node, "chaos", 60);
  const stream = producer.stream(Math.ceil(RECORDS / ((DURATION_MS - 2000) / 1000)), RECORDS);
  const actions = { crash: 0, leave: 0, drop: 0, join: 0 };
  const started = Date.now();
  while (Date.now() - started < DURATION_MS) {
    await new Promise((r) => setTimeout(r, 300 + random() * 900));
    const live = alive();
    const roll = random();
    if (live.length < 2 || (live.length < MAX_MEMBERS && roll < 0.3)) {
      spawn();
      actions.join++;
    } else if (roll < 0.5) {
      live[Math.floor(random() * live.length)]!.kill();
      actions.crash++;
    } else if (roll < 0.7) {
      void live[Math.floor(random() * live.length)]!.close();
      actions.leave++;
    } else {
      live[Math.floor(random() * live.length)]!.send("drop");
      actions.drop++;
    }
  }
  // On a busy machine the producer may lag its pace: let it finish (members stay as they are).
  await waitFor(() => producer.produced >= RECORDS, "every record produced", 60_000);
  await stream.stop();
  expect(producer.produced).toBe(RECORDS);
  while (alive().length < 3) spawn();

  // Settle: everything processed and committed.
  await waitFor(
    async () => {
      const d = await describeGroup(node.node, "chaos-g");
      return d.state === "Stable" && d.partitions.every((p) => p.committedOffset === producer.end.get(p.partition));
    },
    "committed offsets == end offsets",
    60_000,
  );
  const final = await describeGroup(node.node, "chaos-g");
  expect(final.partitions.map((p) => p.committedOffset)).toEqual(final.partitions.map((p) => p.endOffset));
  expect(final.partitions.map((p) => p.endOffset)).toEqual([...Array(PARTITIONS).keys()].map((p) => producer.end.get(p)));

  // At least once: every (partition, offset) processed by some member.
  const processors = new Map<string, ConsumerProcess[]>();
  const count = new Map<string, number>();
  for (const p of procs) {
    for (const r of p.records) {
      const key = `${r.p}:${r.o}`;
      count.set(key, (count.get(key) ?? 0) + 1);
      processors.set(key, [...(processors.get(key) ?? []), p]);
    }
  }
  let missing = 0;
  for (const [p, end] of producer.end) for (let o = 0; o < end; o++) if (!count.has(`${p}:${o}`)) missing++;
  expect(missing, `seed ${seed}`).toBe(0);

  // Per member run: each assignment of a partition is one gapless run of offsets, a revoked
  // partition gets no more records, and per key the sequence numbers only go up.
  for (const p of procs) {
    const expected = new Map<number, number>();
    const lastSeq = new Map<string, number>();
    for (const e of p.timeline) {
      if (e.ev === "assigned") {
        for (const a of e.added as Array<{ p: number; o: number }>) {
          const was = expected.get(a.p);
          if (was !== undefined) expect(a.o, `${p.clientId} re-bound ${a.p} behind what it processed (seed ${seed})`).toBeGreaterThanOrEqual(was);
          expected.set(a.p, a.o);
        }
      } else if (e.ev === "revoked") {
        for (const q of e.partitions as number[]) {
          expected.delete(q);
          if (e.lost) for (const k of [...lastSeq.keys()]) if (k.startsWith(`${q}/`)) lastSeq.delete(k);
        }
      } else if (e.ev === "rec") {
        const r = e as unknown as { p: number; o: number; k: string; v: string };
        expect(expected.has(r.p), `${p.clientId} got ${r.p}@${r.o} without owning it (seed ${seed})`).toBe(true);
        expect(r.o, `${p.clientId} gap or repeat on ${r.p} (seed ${seed})`).toBe(expected.get(r.p));
        expected.set(r.p, r.o + 1);
        const seq = Number(r.v.slice(r.v.lastIndexOf(":") + 1));
        const k = `${r.p}/${r.k}`;
        expect(seq, `${p.clientId} key ${r.k} out of order (seed ${seed})`).toBeGreaterThan(lastSeq.get(k) ?? -1);
        lastSeq.set(k, seq);
      }
    }
  }

  // Duplicates only from crashed members' uncommitted windows: a processing of (p, o) is
  // "lost" when its process was SIGKILLed and never got a commit past o on p accepted; every
  // processing of a record but one must be lost (the one that counts is the last). Graceful
  // leaves commit first; a dropped member commits on the revoke re-sent after it re-binds.
  const owner = new Map<string, ConsumerProcess>();
  for (const p of procs) for (const e of p.events) if (e.ev === "joined") owner.set(e.memberId as string, p);
  const committedBy = new Map<ConsumerProcess, Map<number, number>>();
  for (const c of commits) {
    const p = owner.get(c.memberId);
    expect(p, `a commit by ${c.memberId}, a member no process announced (seed ${seed})`).toBeDefined();
    let high = committedBy.get(p!);
    if (!high) committedBy.set(p!, (high = new Map()));
    for (const o of c.offsets) high.set(o.partition, Math.max(high.get(o.partition) ?? 0, o.offset));
  }
  const lostByCrash = (p: ConsumerProcess, partition: number, offset: number) => p.killed && (committedBy.get(p)?.get(partition) ?? 0) <= offset;
  let duplicates = 0;
  let crashedWindows = 0;
  for (const [key, c] of count) {
    if (c === 1) continue;
    duplicates += c - 1;
    const [dp, dof] = key.split(":").map(Number) as [number, number];
    const counted = processors.get(key)!.filter((p) => !lostByCrash(p, dp, dof));
    crashedWindows += c - counted.length;
    if (counted.length > 1) {
      const who = [...new Set(processors.get(key)!)];
      const story = who.map(
        (p) =>
          `${p.clientId}: ${p.timeline.filter((e) => e.ev !== "rec" || (e.p === dp && Math.abs((e.o as number) - dof) < 2)).map((e) => JSON.stringify(e)).join(" ")}\n alive=${p.alive} killed=${p.killed} exit=${p.child.exitCode} highest commit on ${dp}: ${committedBy.get(p)?.get(dp) ?? "none"} ${p.stderr}`,
      );
      expect.fail(`duplicate ${key} not caused by a crash before its commit (seed ${seed}):\n${story.join("\n")}`);
    }
  }
  expect(crashedWindows, `seed ${seed}`).toBe(duplicates);
  const processed = [...count.values()].reduce((a, b) => a + b, 0);
  console.log(
    `[groups chaos] seed ${seed}: ${RECORDS} records, ${processed} processed (${duplicates} duplicates, all in crashed members' uncommitted windows, ${((100 * duplicates) / RECORDS).toFixed(2)}%), ${procs.length} member processes, ${commits.length} commits, actions ${JSON.stringify(actions)}, final generation ${final.generation}`,
  );
}, DURATION_MS + 150_000);
