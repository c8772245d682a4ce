import { afterEach, describe, expect, it } from "vitest";
import { connect, type Message, type TributaryClient } from "@tributary/client";
import { startWsTestServer, type WsTestServer } from "./helpers/ws-harness.ts";
import { hasMarks, publishMarks } from "./helpers/sdk-node.ts";
import { waitFor } from "./helpers/wait.ts";

let server: WsTestServer | undefined;
const clients: TributaryClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});
function client(s: WsTestServer, options: Parameters<typeof connect>[1] = {}): TributaryClient {
  const c = connect(`ws://127.0.0.1:${s.port}`, { minReconnectDelay: 20, maxReconnectDelay: 100, ...options });
  clients.push(c);
  return c;
}
const until = (cond: () => boolean, timeoutMs = 15_000, what = "condition"): Promise<void> => waitFor(cond, { timeoutMs, what });

describe("WebSocket gateway with the SDK", () => {
  for (const format of ["cbor"] as const) {
    it(`round-trips SDK publish to SDK subscribe over ${format}`, async () => {
      server = await startWsTestServer();
      const sub = client(server, { format });
      const got: Message[] = [];
      sub.subscribe("sdk-topic", (m) => void got.push(m), { from: "earliest" });
      const pub = client(server, { format });
      const result = await pub.publish("sdk-topic", { temp: 21.5 }, { key: "sensor-data/d42/temp" });
      expect(result).toMatchObject({ partition: 0, offset: 0 });
      await until(() => got.length === 1, 5000, "the message");
      expect(got[0]).toMatchObject({ topic: "sdk-topic", partition: 0, offset: 0, key: "sensor-data/d42/temp", value: { temp: 21.5 } });
    });
  }

  it("the SDK resumes without gap or duplicate after the server kills every socket mid-stream", async () => {
    server = await startWsTestServer();
    await server.broker.createTopic("sdk-resume", { partitions: 2 });
    const sub = client(server);
    const seen: string[] = [];
    const markers: Array<{ partition: number; offset: number }> = [];
    sub.subscribe("sdk-resume", (m) => void (m.value === "__marker__" ? markers.push(m) : seen.push(`${m.partition}:${m.offset}`)), { from: "earliest", credit: 100 });
    const pub = client(server);
    const total = 3000;
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      sent.push(pub.publish("sdk-resume", i, { key: `k${i % 5}` }));
      if (i === 1500) {
        await until(() => seen.length > 200, 10_000, "first messages");
        server.gateway.terminateAll();
      }
      if (i % 200 === 199) await Promise.all(sent.splice(0));
    }
    await Promise.all(sent);
    await until(() => seen.length >= total, 20_000, `all ${total} messages`);
    const end = (await server.engine.offsets("sdk-resume", 0)).endOffset + (await server.engine.offsets("sdk-resume", 1)).endOffset;
    expect(end).toBe(total);
    // nothing extra arrives late: a marker after the last record of each partition
    const marks = await publishMarks(pub, "sdk-resume", [0, 1]);
    await until(() => hasMarks(markers, marks), 10_000, "the markers");
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toHaveLength(total);
    for (const p of [0, 1]) {
      const offsets = seen.filter((s) => s.startsWith(`${p}:`)).map((s) => Number(s.split(":")[1]));
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
  });
});
