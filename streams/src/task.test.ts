/**
 * Tasks against oracles: windowed aggregates with out-of-order input (property tests), the
 * operators, and the flush protocol under crashes at every step (the restore must neither
 * lose nor repeat an output). The network is simulated: a "log" per topic partition.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StreamsBuilder } from "./builder.ts";
import type { ChangelogRecord } from "./stores.ts";
import { eventTimeOf, ORIGIN_HEADER, StreamTask, type EncodedOutput, type FlushBatch, type InputRecord, type TaskNames } from "./task.ts";
import type { SubTopology } from "./topology.ts";
import { hopping, tumbling, windowsFor, type TimeWindows } from "./windows.ts";

const names: TaskNames = { changelog: (s) => `app-${s}-changelog`, topic: (t) => (typeof t === "string" ? t : `app-${t.repartition}-repartition`), taskId: "app|in|0" };

interface Reading {
  v: number;
}

function averages(windows: TimeWindows): SubTopology {
  const b = new StreamsBuilder();
  b.from<Reading>("in")
    .groupByKey()
    .windowedBy(windows)
    .aggregate(() => ({ sum: 0, n: 0 }), (_k, r, agg) => ({ sum: agg.sum + r.v, n: agg.n + 1 }), { name: "avg" })
    .toStream()
    .mapValues((agg, _k, rec) => ({ start: rec.window!.start, sum: agg.sum, n: agg.n }))
    .to("out");
  return b.build().subTopologies[0]!;
}

function record(offset: number, key: string, timestamp: number, v: number): InputRecord {
  return { offset, key, value: { v }, timestamp, headers: {} };
}

/** Out-of-order input: timestamps move forward but each is shifted back by up to `disorder`. */
const inputs = (disorder: number) =>
  fc.array(fc.tuple(fc.constantFrom("a", "b", "c", "d"), fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: disorder }), fc.integer({ min: -50, max: 50 })), { minLength: 1, maxLength: 300 }).map((rows) => {
    let t = 10_000;
    return rows.map(([key, step, back, v], offset) => {
      t += step;
      return record(offset, key, Math.max(0, t - back), v);
    });
  });

/** What a windowed average must give: every (key, window) of the non-late records, and which records are late. */
function oracle(records: InputRecord[], windows: TimeWindows): Map<string, { sum: number; n: number }> {
  const out = new Map<string, { sum: number; n: number }>();
  let st = -1;
  for (const r of records) {
    st = Math.max(st, r.timestamp);
    for (const w of windowsFor(windows, r.timestamp)) {
      if (w.end + windows.graceMs <= st) continue;
      const k = `${r.key}@${w.start}`;
      const agg = out.get(k) ?? { sum: 0, n: 0 };
      agg.sum += (r.value as Reading).v;
      agg.n++;
      out.set(k, agg);
    }
  }
  return out;
}

function runAll(sub: SubTopology, records: InputRecord[], flushEvery = 7): EncodedOutput[] {
  const task = new StreamTask(sub, 0, names, () => undefined);
  const outputs: EncodedOutput[] = [];
  records.forEach((r, i) => {
    task.process(r, eventTimeOf(sub, r));
    if (i % flushEvery === 0) outputs.push(...(task.snapshot()?.outputs ?? []));
  });
  outputs.push(...(task.snapshot()?.outputs ?? []));
  return outputs;
}

function byWindow(outputs: EncodedOutput[]): Map<string, { sum: number; n: number }> {
  const got = new Map<string, { sum: number; n: number }>();
  for (const o of outputs) {
    const v = JSON.parse(o.payload!) as { start: number; sum: number; n: number };
    const k = `${o.key}@${v.start}`;
    expect(got.has(k), `window ${k} emitted twice`).toBe(false);
    got.set(k, { sum: v.sum, n: v.n });
  }
  return got;
}

/** The closed windows of the oracle: those whose end + grace the stream time reached. */
function closedOnly(all: Map<string, { sum: number; n: number }>, records: InputRecord[], windows: TimeWindows): Map<string, { sum: number; n: number }> {
  const st = Math.max(...records.map((r) => r.timestamp));
  return new Map([...all].filter(([k]) => Number(k.split("@")[1]) + windows.sizeMs + windows.graceMs <= st));
}

describe("windowed aggregates", () => {
  for (const [name, windows] of [
    ["tumbling", tumbling(1000, { grace: 300 })],
    ["hopping", hopping(1000, 250, { grace: 300 })],
  ] as const) {
    it(`${name}: each closed window emitted once, equal to the oracle; late records dropped`, () => {
      fc.assert(
        fc.property(inputs(600), (records) => {
          const got = byWindow(runAll(averages(windows), records));
          expect(got).toEqual(closedOnly(oracle(records, windows), records, windows));
        }),
        { numRuns: 150 },
      );
    });
  }

  it("counts records dropped as late (every window closed)", () => {
    const sub = averages(tumbling(1000, { grace: 100 }));
    const task = new StreamTask(sub, 0, names, () => undefined);
    task.process(record(0, "a", 5000, 1), 5000);
    task.process(record(1, "a", 3000, 1), 3000);
    expect(task.counters.late).toBe(1);
  });
});

describe("operators", () => {
  it("filter, map, flatMapValues, selectKey, count through a repartition, leftJoin", () => {
    const b = new StreamsBuilder();
    const devices = b.table<{ room: string }>("devices");
    const s = b.from<{ t: number }>("in").filter((v) => v.t >= 0);
    s.leftJoin(devices, (v, d) => ({ ...v, room: d?.room ?? null })).to("joined");
    s.flatMapValues((v) => [v.t, v.t * 10]).to("flat");
    s.map((v, k) => ({ key: `${k}!`, value: v.t })).groupByKey().count({ name: "counts" }).toStream().to("counts");
    const topo = b.build();
    expect(topo.subTopologies).toHaveLength(2);
    expect(topo.subTopologies[1]!.source).toEqual({ repartition: "counts" });
    const table = new Map([["a", { room: "r1" }]]);
    const task = new StreamTask(topo.subTopologies[0]!, 0, names, (_t, k) => table.get(k));
    task.process({ offset: 0, key: "a", value: { t: 1 }, timestamp: 1, headers: {} }, 1);
    task.process({ offset: 1, key: "b", value: { t: -1 }, timestamp: 2, headers: {} }, 2);
    task.process({ offset: 2, key: "b", value: { t: 2 }, timestamp: 3, headers: {} }, 3);
    const first = task.snapshot()!.outputs.map((o) => [o.topic, o.key, o.payload]);
    expect(first).toEqual([
      ["joined", "a", JSON.stringify({ t: 1, room: "r1" })],
      ["flat", "a", "1"],
      ["flat", "a", "10"],
      ["app-counts-repartition", "a!", "1"],
      ["joined", "b", JSON.stringify({ t: 2, room: null })],
      ["flat", "b", "2"],
      ["flat", "b", "20"],
      ["app-counts-repartition", "b!", "2"],
    ]);
    // The repartition side: event time travels in a header; the count table emits each changed key at a flush.
    const counts = new StreamTask(topo.subTopologies[1]!, 0, names, () => undefined);
    const rec = (offset: number, key: string): InputRecord => ({ offset, key, value: 1, timestamp: 999, headers: { "tributary-streams-time": "7" } });
    counts.process(rec(0, "a!"), eventTimeOf(topo.subTopologies[1]!, rec(0, "a!")));
    counts.process(rec(1, "a!"), 7);
    counts.process(rec(2, "b!"), 7);
    expect(counts.streamTime).toBe(7);
    expect(counts.snapshot()!.outputs.map((o) => [o.key, o.payload])).toEqual([
      ["a!", "2"],
      ["b!", "1"],
    ]);
  });

  it("reduce keeps the first value, then reduces", () => {
    const b = new StreamsBuilder();
    b.from<number>("in").groupByKey().windowedBy(tumbling(10)).reduce((a, v) => Math.max(a, v)).to("out");
    const task = new StreamTask(b.build().subTopologies[0]!, 0, names, () => undefined);
    [3, 9, 4].forEach((v, i) => task.process({ offset: i, key: "k", value: v, timestamp: i, headers: {} }, i));
    task.process({ offset: 3, key: "k", value: 1, timestamp: 50, headers: {} }, 50);
    expect(task.snapshot()!.outputs.map((o) => [o.key, o.payload, o.headers["tributary-window-start"]])).toEqual([["k", "9", "0"]]);
  });
});

/**
 * The flush protocol with a crash at any point: changelog records and outputs land in any
 * subset (a flush that died in step 1 or 3), the outbox lands or not, the commit lands or
 * not. A new task restores from the "log" and completes the outbox like the application.
 */
describe("crash and restore", () => {
  interface World {
    changelog: ChangelogRecord[];
    outbox: { b: number; st: number; out: Array<{ k: string | null; v: unknown; h: Record<string, string> }> } | null;
    outputs: EncodedOutput[];
    committed: number;
  }

  function restore(sub: SubTopology, world: World): StreamTask {
    const task = new StreamTask(sub, 0, names, () => undefined);
    for (const r of world.changelog) task.restoreRecord("avg", r);
    task.restoreOutbox(world.outbox);
    const ob = world.outbox;
    if (ob && ob.b > world.committed) {
      const prefix = `${names.taskId}|${ob.b}|`;
      const seen = new Set(world.outputs.map((o) => o.headers[ORIGIN_HEADER]).filter((h) => h?.startsWith(prefix)));
      ob.out.forEach((o, i) => {
        if (!seen.has(prefix + i)) world.outputs.push({ topic: "out", key: o.k, payload: JSON.stringify(o.v), contentType: "application/json", headers: o.h });
      });
    }
    return task;
  }

  function flushFully(world: World, batch: FlushBatch): void {
    for (const c of batch.changelog) world.changelog.push(...c.records);
    world.outbox = { b: batch.outbox.b, st: batch.outbox.st, out: batch.outbox.out.map((o) => ({ k: o.k, v: JSON.parse(o.v as string), h: o.h })) };
    world.outputs.push(...batch.outputs);
    world.committed = batch.outbox.b;
    batch.task.flushed();
  }

  it("no output lost or repeated across crashes at any step of a flush", () => {
    const windows = tumbling(1000, { grace: 300 });
    const sub = averages(windows);
    fc.assert(
      fc.property(inputs(600), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 }), fc.double({ min: 0, max: 1, noNaN: true })), { maxLength: 4 }), fc.integer({ min: 1, max: 20 }), (records, crashes, flushEvery) => {
        const world: World = { changelog: [], outbox: null, outputs: [], committed: 0 };
        let task = restore(sub, world);
        let pos = 0;
        const plan = [...crashes].map(([at, step, fraction]) => ({ at: at % (records.length + 1), step, fraction })).sort((a, b) => a.at - b.at);
        let guard = 0;
        while (pos < records.length && guard++ < 10_000) {
          const r = records[pos]!;
          task.process(r, r.timestamp);
          pos++;
          const crash = plan[0] && plan[0].at <= pos ? plan.shift()! : undefined;
          if (crash) {
            // A flush that dies at `step`: 0 in the changelog, 1 after the outbox, 2 in the outputs, 3 before the commit.
            const batch = task.snapshot();
            if (batch) {
              const part = <T>(xs: T[]) => xs.filter((_, i) => (i * 7919) % 100 < crash.fraction * 100);
              const records = batch.changelog.flatMap((c) => c.records);
              world.changelog.push(...(crash.step === 0 ? part(records) : records));
              if (crash.step >= 1) world.outbox = { b: batch.outbox.b, st: batch.outbox.st, out: batch.outbox.out.map((o) => ({ k: o.k, v: JSON.parse(o.v as string), h: o.h })) };
              if (crash.step === 2) world.outputs.push(...part(batch.outputs));
              if (crash.step === 3) world.outputs.push(...batch.outputs);
            }
            task = restore(sub, world);
            pos = world.committed; // the group restarts the partition at the commit
            continue;
          }
          if (pos % flushEvery === 0) {
            const batch = task.snapshot();
            if (batch) flushFully(world, batch);
          }
        }
        const last = task.snapshot();
        if (last) flushFully(world, last);
        const got = byWindow(world.outputs);
        expect(got).toEqual(closedOnly(oracle(records, windows), records, windows));
      }),
      { numRuns: 300 },
    );
  });
});
