/**
 * Hostile input, bounded in time: fast-check drives random and mutated-valid input at one
 * node process over MQTT (3.1.1 and 5, TCP), the WebSocket SDK protocol (CBOR and JSON)
 * and the HTTP API. After every batch: the node answers /healthz, a control subscriber's
 * stream went on with no gap and every acknowledged control record arrived, and the node's
 * memory stays near its baseline. Prints how many inputs each target got.
 *
 * FUZZ_RUNS scales it (batches per target; default 40 × 25 inputs); FUZZ_SEED replays a run.
 */
import { connect as netConnect } from "node:net";
import fc from "fast-check";
import mqttPacket, { type Packet } from "mqtt-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connect, type TributaryClient } from "@tributary/client";
import { encodeFrame, SUBPROTOCOL_CBOR, SUBPROTOCOL_JSON, WS_PATH, type Frame } from "@tributary/client/protocol";
import { spawnFileNode, type NodeChild } from "./helpers/node-process.ts";
import { waitFor, within } from "./helpers/wait.ts";

const BATCHES = Number(process.env.FUZZ_RUNS ?? 40);
const PER_BATCH = 25;
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 1_000_000;
const RSS_SLACK = 96 * 1024 * 1024;

/** The values an arbitrary generates. */
type Of<A> = A extends fc.Arbitrary<infer T> ? T : never;

let node: NodeChild;
let control: TributaryClient;
let received: number[] = [];
let acked = 0;
let baseline = 0;
const tried: Record<string, number> = {};

async function produceControl(): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/topics/fuzz-control/records`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: null, value: `c${acked}` }),
  });
  expect(res.status).toBe(200);
  acked++;
}

/** After a batch: the node is up, the control stream has every acked record in order, memory is near its baseline. */
async function nodeIsWell(target: string): Promise<void> {
  const health = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`);
  expect(health.status, `${target}: /healthz after a batch`).toBe(200);
  await produceControl();
  await waitFor(() => received.length >= acked, { timeoutMs: 10_000, what: `${target}: the control subscriber to get all ${acked} records` });
  expect(received, `${target}: control stream in order, no gap`).toEqual(Array.from({ length: acked }, (_, i) => i));
  expect(node.rss(), `${target}: RSS near its baseline`).toBeLessThan(baseline + RSS_SLACK);
}

/** Opens a TCP connection, writes `chunks`, then ends it; resolves once the socket closed (or a short deadline passed). */
async function tcpSend(port: number, chunks: Uint8Array[]): Promise<void> {
  const socket = netConnect(port, "127.0.0.1");
  socket.on("error", () => undefined); // the node closing a bad connection is the point
  socket.on("data", () => undefined);
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()).once("error", () => resolve()));
  for (const c of chunks) socket.write(c);
  socket.end();
  await within(new Promise((r) => socket.once("close", r)), 5000, "the fuzz socket to close").catch(() => socket.destroy());
}

/** A valid packet of either version, as bytes, from fast-check's choices. */
const validMqtt = fc
  .record({
    version: fc.constantFrom(4 as const, 5 as const),
    kind: fc.constantFrom("connect", "publish", "subscribe", "unsubscribe", "pingreq", "puback", "pubrel", "disconnect"),
    topic: fc.stringMatching(/^[a-z/+#$]{1,12}$/),
    payload: fc.uint8Array({ maxLength: 64 }),
    qos: fc.constantFrom(0, 1, 2),
    id: fc.integer({ min: 0, max: 65535 }),
  })
  .map(({ version, kind, topic, payload, qos, id }) => {
    const packets: Record<string, Packet> = {
      connect: { cmd: "connect", protocolId: "MQTT", protocolVersion: version, clientId: `fz${id}`, clean: true, keepalive: 0 } as Packet,
      publish: { cmd: "publish", topic, payload: Buffer.from(payload), qos: qos as 0 | 1 | 2, messageId: id || 1, retain: false, dup: false } as Packet,
      subscribe: { cmd: "subscribe", messageId: id || 1, subscriptions: [{ topic, qos: qos as 0 | 1 | 2 }] } as Packet,
      unsubscribe: { cmd: "unsubscribe", messageId: id || 1, unsubscriptions: [topic] } as Packet,
      pingreq: { cmd: "pingreq" } as Packet,
      puback: { cmd: "puback", messageId: id || 1 } as Packet,
      pubrel: { cmd: "pubrel", messageId: id || 1 } as Packet,
      disconnect: { cmd: "disconnect" } as Packet,
    };
    try {
      return { version, bytes: new Uint8Array(mqttPacket.generate(packets[kind]!, { protocolVersion: version })) };
    } catch {
      return { version, bytes: new Uint8Array([0xc0, 0x00]) }; // mqtt-packet refused the combination: a PINGREQ instead
    }
  });

/** Valid bytes with a few bytes flipped, cut or repeated. */
function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.constantFrom("flip", "cut", "double")).map(([bytes, flips, how]) => {
    const out = Uint8Array.from(bytes);
    for (const [at, value] of flips) if (out.length > 0) out[at % out.length] = value;
    if (how === "cut") return out.subarray(0, Math.max(1, out.length >> 1));
    if (how === "double") return Uint8Array.from([...out, ...out]);
    return out;
  });
}

const mqttInput = fc.oneof(
  fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { minLength: 1, maxLength: 3 }).map((chunks) => ({ connectFirst: null as 4 | 5 | null, chunks })),
  fc.tuple(validMqtt, fc.boolean()).chain(([first, again]) =>
    mutated(fc.constant(first.bytes)).map((bytes) => ({ connectFirst: again ? first.version : null, chunks: [bytes] })),
  ),
);

function connectBytes(version: 4 | 5): Uint8Array {
  return new Uint8Array(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: version, clientId: `fzc${Math.random()}`, clean: true, keepalive: 0 } as Packet, { protocolVersion: version }));
}

const wsFrameObject = fc.record(
  {
    op: fc.constantFrom("hello", "publish", "subscribe", "unsubscribe", "credit", "commit", "ping", "presence", "bogus"),
    id: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
    topic: fc.oneof(fc.stringMatching(/^[a-z._/+#-]{0,20}$/), fc.integer()),
    sub: fc.oneof(fc.integer({ min: -2, max: 5 }), fc.string()),
    value: fc.oneof(fc.uint8Array({ maxLength: 32 }), fc.string(), fc.constant(null)),
    protocol: fc.constantFrom(1, 2, "1"),
    credit: fc.oneof(fc.integer(), fc.double()),
    from: fc.oneof(fc.constantFrom("earliest", "latest"), fc.record({ offsets: fc.dictionary(fc.stringMatching(/^[0-9]{1,5}$/), fc.integer()) })),
  },
  { requiredKeys: ["op"] },
);

const wsInput = fc.record({
  format: fc.constantFrom("cbor" as const, "json" as const),
  hello: fc.boolean(),
  frames: fc.array(
    fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => ({ raw: bytes })),
      wsFrameObject.map((frame) => ({ frame })),
      mutated(wsFrameObject.map((frame) => new Uint8Array(encodeFrame(frame as unknown as Frame, "cbor") as Uint8Array))).map((bytes) => ({ raw: bytes })),
    ),
    { minLength: 1, maxLength: 4 },
  ),
});

async function wsSend(input: Of<typeof wsInput>): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}${WS_PATH}`, [input.format === "cbor" ? SUBPROTOCOL_CBOR : SUBPROTOCOL_JSON]);
  ws.on("error", () => undefined);
  const opened = await within(
    new Promise<boolean>((resolve) => {
      ws.once("open", () => resolve(true));
      ws.once("error", () => resolve(false));
      ws.once("unexpected-response", () => resolve(false));
    }),
    5000,
    "the fuzz WebSocket to open",
  );
  if (!opened) return;
  if (input.hello) ws.send(encodeFrame({ op: "hello", protocol: 1 } as Frame, input.format));
  for (const f of input.frames) {
    if ("raw" in f) ws.send(input.format === "cbor" ? f.raw : Buffer.from(f.raw).toString("latin1"));
    else ws.send(encodeFrame(f.frame as unknown as Frame, input.format));
  }
  ws.close();
  await within(new Promise((r) => ws.once("close", r)), 5000, "the fuzz WebSocket to close").catch(() => ws.terminate());
}

const httpInput = fc.record({
  method: fc.constantFrom("GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"),
  path: fc.oneof(
    fc.constantFrom("/topics", "/topics/fuzz-http", "/topics/fuzz-http/records", "/topics/fuzz-http/partitions/0/records?offset=0", "/groups", "/cluster", "/metrics", "/healthz", "/topics/__mqtt.sessions/records"),
    fc.stringMatching(/^\/[a-zA-Z0-9%._~/?=&-]{0,40}$/),
  ),
  contentType: fc.constantFrom("application/json", "application/cbor", "application/x-ndjson", "text/plain", ""),
  body: fc.oneof(fc.json(), fc.string({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString("latin1"))),
});

async function httpSend(input: Of<typeof httpInput>): Promise<void> {
  const withBody = input.method !== "GET" && input.method !== "OPTIONS";
  const headers: Record<string, string> = input.contentType ? { "content-type": input.contentType } : {};
  const res = await fetch(`http://127.0.0.1:${node.httpPort}${input.path}`, { method: input.method, headers, body: withBody ? input.body : undefined }).catch(() => null);
  await res?.arrayBuffer().catch(() => undefined);
  if (res) expect(res.status, `${input.method} ${input.path}`).toBeLessThan(500);
}

beforeAll(async () => {
  node = await spawnFileNode({ args: ["--log-level", "error"] });
  await fetch(`http://127.0.0.1:${node.httpPort}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "fuzz-control", partitions: 1 }) });
  control = connect(`ws://127.0.0.1:${node.httpPort}`, { minReconnectDelay: 20, maxReconnectDelay: 200 });
  control.subscribe("fuzz-control", (msg) => void received.push(msg.offset), { from: "earliest", codec: "raw" });
  await produceControl();
  await waitFor(() => received.length === 1, { what: "the control subscriber's first record" });
  baseline = node.rss();
});

afterAll(async () => {
  console.log(`fuzz (seed ${SEED}): ${Object.entries(tried).map(([t, n]) => `${t} ${n} inputs`).join(", ")}; ${acked} control records, none lost`);
  await control?.close();
  await node?.stop();
  received = [];
});

describe(`hostile input never takes the node down (fast-check, seed ${SEED})`, () => {
  it("MQTT over TCP: random bytes and mutated valid packets of both versions", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mqttInput, { minLength: PER_BATCH, maxLength: PER_BATCH }), async (inputs) => {
        for (const input of inputs) {
          await tcpSend(node.mqttPort, input.connectFirst ? [connectBytes(input.connectFirst), ...input.chunks] : input.chunks);
          tried.mqtt = (tried.mqtt ?? 0) + 1;
        }
        await nodeIsWell("mqtt");
      }),
      { numRuns: BATCHES, seed: SEED, endOnFailure: true },
    );
  });

  it("WebSocket SDK protocol: random bytes, random and mutated CBOR / JSON frames, before and after hello", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(wsInput, { minLength: PER_BATCH, maxLength: PER_BATCH }), async (inputs) => {
        for (const input of inputs) {
          await wsSend(input);
          tried.ws = (tried.ws ?? 0) + 1;
        }
        await nodeIsWell("ws");
      }),
      { numRuns: BATCHES, seed: SEED, endOnFailure: true },
    );
  });

  it("HTTP API: random methods, paths, content types and bodies never get a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(httpInput, { minLength: PER_BATCH, maxLength: PER_BATCH }), async (inputs) => {
        for (const input of inputs) {
          await httpSend(input);
          tried.http = (tried.http ?? 0) + 1;
        }
        await nodeIsWell("http");
      }),
      { numRuns: BATCHES, seed: SEED, endOnFailure: true },
    );
  });
});
