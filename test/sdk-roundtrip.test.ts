import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, State, type Message, type TributaryClient } from "@tributary/client";
import { startSdkTestNode, type SdkTestNode } from "./helpers/sdk-node.ts";
import { waitFor } from "./helpers/wait.ts";

let server: SdkTestNode;
const clients: TributaryClient[] = [];
const client = (options: Parameters<typeof connect>[1] = {}) => {
  const c = connect(server.url, { minReconnectDelay: 20, maxReconnectDelay: 200, ...options });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  server = await startSdkTestNode({ topics: { defaultPartitions: 3 } });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.close();
});

const until = (check: () => boolean, timeoutMs = 10_000): Promise<void> => waitFor(check, { timeoutMs });

describe("SDK against a real node", () => {
  it("round-trips a JSON value (the default codec) with key and headers from publish to a live subscriber", async () => {
    const c = client();
    const got: Message[] = [];
    const sub = c.subscribe("roundtrip", (m) => void got.push(m));
    await new Promise<void>((resolve) => sub.once("subscribed", () => resolve()));
    expect(c.state).toBe(State.Connected);
    const result = await c.publish("roundtrip", { temp: 21.5, tags: ["a"] }, { key: "d42", headers: { h: "v", b: new Uint8Array([0xff, 1]) } });
    expect(result.offset).toBe(0);
    await until(() => got.length === 1);
    const m = got[0]!;
    expect(m.topic).toBe("roundtrip");
    expect(m.partition).toBe(result.partition);
    expect(m.offset).toBe(0);
    expect(m.key).toBe("d42");
    // A string header comes back a string; bytes that are not UTF-8 stay bytes.
    expect(m.headers.h).toBe("v");
    expect(Array.from(m.headers.b as Uint8Array)).toEqual([0xff, 1]);
    expect(m.contentType).toBe("application/json");
    expect(m.value).toEqual({ temp: 21.5, tags: ["a"] });
    expect(m.text()).toBe('{"temp":21.5,"tags":["a"]}');
    expect(sub.position()[m.partition]).toEqual({ offset: 1, epoch: expect.any(String) });
  });

  it("round-trips a CBOR value (bytes inside) with the cbor codec, which records application/cbor", async () => {
    const c = client({ codec: "cbor" });
    const got: Message[] = [];
    const sub = c.subscribe("roundtrip-cbor", (m) => void got.push(m), { from: "earliest" });
    await new Promise<void>((resolve) => sub.once("subscribed", () => resolve()));
    await c.publish("roundtrip-cbor", { temp: 21.5, raw: new Uint8Array([1, 2]) });
    await until(() => got.length === 1);
    expect(got[0]!.contentType).toBe("application/cbor");
    expect(Array.from((got[0]!.value as { raw: Uint8Array }).raw)).toEqual([1, 2]);
    // A default (JSON) reader decodes it by its content type too.
    const reader = client();
    const read: Message[] = [];
    reader.subscribe("roundtrip-cbor", (m) => void read.push(m), { from: "earliest" });
    await until(() => read.length === 1);
    expect((read[0]!.value as { temp: number }).temp).toBe(21.5);
  });

  it("works over the JSON subprotocol with the JSON and raw codecs", async () => {
    const c = client({ format: "json", codec: "json" });
    const sub = c.subscribe("json-topic", { from: "earliest" });
    // One partition, so "first message" is well defined.
    await c.publish("json-topic", { hello: "wörld" }, { partition: 0 });
    await c.publish("json-topic", [0, 255], { partition: 0 });
    const it = sub[Symbol.asyncIterator]();
    expect((await it.next()).value?.value).toEqual({ hello: "wörld" });
    const raw = client({ codec: "raw" });
    const rawSub = raw.subscribe("json-topic", { from: "earliest" });
    const rawIt = rawSub[Symbol.asyncIterator]();
    expect(new TextDecoder().decode((await rawIt.next()).value!.value as Uint8Array)).toBe('{"hello":"wörld"}');
    await sub.unsubscribe();
    await rawSub.unsubscribe();
  });

  it("starts from earliest, an offsets position, or a timestamp", async () => {
    const c = client();
    for (let i = 0; i < 10; i++) await c.publish("positions", i, { partition: 0 });
    const collect = async (from: Parameters<TributaryClient["subscribe"]>[2] extends infer O ? O : never, n: number) => {
      const sub = c.subscribe("positions", from);
      const out: number[] = [];
      for await (const m of sub) {
        if (m.partition !== 0) continue;
        out.push(m.value as number);
        if (out.length === n) break;
      }
      return out;
    };
    expect(await collect({ from: "earliest" }, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await collect({ from: { offsets: { 0: 7 } } }, 3)).toEqual([7, 8, 9]);
    const t = Date.now() + 1; // after every record so far
    await until(() => Date.now() >= t); // so the next one is stamped at t or later
    await c.publish("positions", 10, { partition: 0 });
    expect(await collect({ from: { timestamp: t } }, 1)).toEqual([10]);
  });

  it("delivers a filter subscription only the keys that match", async () => {
    const c = client();
    const got: string[] = [];
    let markers = 0;
    const sub = c.subscribe("sensor-data/+/temp", (m) => void (m.value === "__marker__" ? markers++ : got.push(m.key!)), { from: "earliest" });
    await new Promise<void>((resolve) => sub.once("subscribed", () => resolve()));
    await c.publish("sensor-data", 1, { key: "sensor-data/d1/temp" });
    await c.publish("sensor-data", 2, { key: "sensor-data/d1/humidity" });
    await c.publish("sensor-data", 3, { key: "sensor-data/d2/temp" });
    await until(() => got.length === 2);
    // a matching marker after everything in each of the 3 partitions: the humidity record has been passed over by then
    for (const partition of [0, 1, 2]) await c.publish("sensor-data", "__marker__", { key: "sensor-data/marker/temp", partition });
    await until(() => markers === 3);
    expect(got.sort()).toEqual(["sensor-data/d1/temp", "sensor-data/d2/temp"]);
  });

  it("keeps per-partition order under concurrent publishers", async () => {
    const publishers = [client(), client(), client()];
    const reader = client();
    const perPartition = new Map<number, { offsets: number[]; values: Map<string, number[]> }>();
    let count = 0;
    const sub = reader.subscribe("ordering", (m) => {
      count++;
      let p = perPartition.get(m.partition);
      if (!p) perPartition.set(m.partition, (p = { offsets: [], values: new Map() }));
      p.offsets.push(m.offset);
      const { who, n } = m.value as { who: string; n: number };
      const list = p.values.get(who) ?? [];
      list.push(n);
      p.values.set(who, list);
    }, { from: "earliest" });
    await new Promise<void>((resolve) => sub.once("subscribed", () => resolve()));
    const N = 500;
    await Promise.all(
      publishers.map((pub, i) =>
        Promise.all(Array.from({ length: N }, (_, n) => pub.publish("ordering", { who: `p${i}`, n }, { key: `p${i}` }))),
      ),
    );
    await until(() => count === 3 * N);
    for (const { offsets, values } of perPartition.values()) {
      expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i)); // contiguous, increasing
      for (const list of values.values()) expect(list).toEqual(list.map((_, i) => list[0]! + i)); // each publisher in order
    }
    const total = [...perPartition.values()].reduce((n, p) => n + [...p.values.values()].reduce((a, l) => a + l.length, 0), 0);
    expect(total).toBe(3 * N);
  });
});
