/**
 * The HTTP API against a real node (startNode, FileLogEngine in a temp dir, 127.0.0.1,
 * port 0): round trips and every error path, each checked for status, code and shape.
 */
import { testNodeConfig } from "./helpers/node-config.ts";
import { decode as decodeCbor, encode as encodeCbor } from "cbor-x";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import { DEFAULT_CONFIG, type TributaryConfig } from "../server/src/config/config.ts";
import { createLogger } from "../server/src/logger.ts";
import { startNode, type TributaryNode } from "../server/src/node.ts";
import { waitFor } from "./helpers/wait.ts";

const dirs: string[] = [];
const nodes: TributaryNode[] = [];

async function startTestNode(overrides: { topics?: Partial<TributaryConfig["topics"]>; limits?: Partial<TributaryConfig["limits"]> } = {}): Promise<TributaryNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-http-"));
  dirs.push(dataDir);
  const config = testNodeConfig(dataDir, { topics: overrides.topics, limits: { maxFrameBytes: 64 * 1024, maxRecordBytes: 32 * 1024, ...overrides.limits } });
  const node = await startNode(config, { logger: createLogger("error") });
  nodes.push(node);
  return node;
}

let node: TributaryNode;
let base: string;

beforeAll(async () => {
  node = await startTestNode();
  base = node.url;
});

afterAll(async () => {
  for (const n of nodes) await n.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Reply {
  status: number;
  contentType: string | null;
  json: any;
  raw: Uint8Array;
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, url = base): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" || body instanceof Uint8Array ? (body as BodyInit) : JSON.stringify(body);
    if (!("content-type" in headers)) (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const response = await fetch(url + path, init);
  const raw = new Uint8Array(await response.arrayBuffer());
  const contentType = response.headers.get("content-type");
  const json = contentType === "application/json" && raw.length > 0 ? JSON.parse(Buffer.from(raw).toString("utf8")) : undefined;
  return { status: response.status, contentType, json, raw };
}

function expectError(reply: Reply, status: number, code: string, messagePart?: string): void {
  expect(reply.status, JSON.stringify(reply.json)).toBe(status);
  expect(reply.contentType).toBe("application/json");
  expect(reply.json).toEqual({ error: { code, message: expect.any(String) } });
  if (messagePart) expect(reply.json.error.message).toContain(messagePart);
}

let topicCount = 0;
async function newTopic(partitions = 1): Promise<string> {
  const name = `t${topicCount++}`;
  const reply = await call("POST", "/topics", { name, partitions });
  expect(reply.status).toBe(201);
  return name;
}

describe("health", () => {
  it("answers /healthz and /readyz with 200 once the node is started", async () => {
    const health = await call("GET", "/healthz");
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: "ok", nodeId: node.nodeId });
    const ready = await call("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ status: "ready", engine: "file" });
  });
});

describe("topics", () => {
  it("creates, lists, describes with per-partition offsets and epochs, and deletes a topic", async () => {
    const created = await call("POST", "/topics", { name: "orders", partitions: 3, retentionMs: "12h", retentionBytes: 1_000_000 });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: "orders", partitions: 3, replicationFactor: 1, retentionMs: 43_200_000, retentionBytes: 1_000_000, cleanupPolicy: "delete" });

    const list = await call("GET", "/topics");
    expect(list.status).toBe(200);
    expect(list.json.topics).toContain("orders");

    await call("POST", "/topics/orders/records", { value: "x", partition: 2 });
    const described = await call("GET", "/topics/orders");
    expect(described.status).toBe(200);
    expect(described.json.partitionInfo).toHaveLength(3);
    expect(described.json.partitionInfo[2]).toEqual({ partition: 2, earliestOffset: 0, endOffset: 1, epoch: expect.any(String) });
    expect(described.json.partitionInfo[0]).toMatchObject({ partition: 0, earliestOffset: 0, endOffset: 0 });

    const deleted = await call("DELETE", "/topics/orders");
    expect(deleted.status).toBe(204);
    expectError(await call("GET", "/topics/orders"), 404, "UNKNOWN_TOPIC");
    expect((await call("GET", "/topics")).json.topics).not.toContain("orders");
  });

  it("uses the server's default partition count when none is given", async () => {
    const created = await call("POST", "/topics", { name: "defaults" });
    expect(created.status).toBe(201);
    expect(created.json.partitions).toBe(DEFAULT_CONFIG.topics.defaultPartitions);
  });

  it("changes the epoch when a topic is deleted and re-created", async () => {
    await call("POST", "/topics", { name: "reborn" });
    const before = (await call("GET", "/topics/reborn")).json.partitionInfo[0].epoch;
    await call("DELETE", "/topics/reborn");
    await call("POST", "/topics", { name: "reborn" });
    const after = (await call("GET", "/topics/reborn")).json.partitionInfo[0].epoch;
    expect(after).not.toBe(before);
  });

  it("rejects a bad topic name with 400 INVALID_TOPIC on every route", async () => {
    expectError(await call("POST", "/topics", { name: "bad name" }), 400, "INVALID_TOPIC", "[a-zA-Z0-9._-]");
    expectError(await call("POST", "/topics", { name: "x".repeat(250) }), 400, "INVALID_TOPIC");
    expectError(await call("POST", "/topics", { name: "" }), 400, "INVALID_TOPIC");
    expectError(await call("GET", "/topics/bad%20name"), 400, "INVALID_TOPIC");
    expectError(await call("DELETE", "/topics/bad%24"), 400, "INVALID_TOPIC");
    expectError(await call("POST", "/topics/bad%20name/records", { value: "v" }), 400, "INVALID_TOPIC");
    expectError(await call("GET", "/topics/bad%20name/partitions/0/records"), 400, "INVALID_TOPIC");
  });

  it("answers 404 UNKNOWN_TOPIC for a topic that does not exist", async () => {
    expectError(await call("GET", "/topics/nope"), 404, "UNKNOWN_TOPIC");
    expectError(await call("DELETE", "/topics/nope"), 404, "UNKNOWN_TOPIC");
    expectError(await call("GET", "/topics/nope/partitions/0/records"), 404, "UNKNOWN_TOPIC");
  });

  it("answers 409 TOPIC_EXISTS for a duplicate create", async () => {
    const name = await newTopic();
    expectError(await call("POST", "/topics", { name }), 409, "TOPIC_EXISTS");
  });

  it("refuses replicationFactor > 1 on the file engine with 400 POLICY_VIOLATION naming the Redis engine", async () => {
    expectError(await call("POST", "/topics", { name: "replicated", replicationFactor: 3 }), 400, "POLICY_VIOLATION", "Redis");
    expectError(await call("GET", "/topics/replicated"), 404, "UNKNOWN_TOPIC");
  });

  it("rejects malformed create requests with 400 BAD_REQUEST saying what to fix", async () => {
    expectError(await call("POST", "/topics", { name: "p0", partitions: 0 }), 400, "BAD_REQUEST", "partitions: expected an integer 1..");
    expectError(await call("POST", "/topics", { name: "p1", partitons: 2 }), 400, "BAD_REQUEST", 'did you mean "partitions"');
    expectError(await call("POST", "/topics", { name: "p2", retentionMs: "soon" }), 400, "BAD_REQUEST", "retentionMs");
    expectError(await call("POST", "/topics", { partitions: 2 }), 400, "BAD_REQUEST", "name");
    expectError(await call("POST", "/topics", [1, 2]), 400, "BAD_REQUEST");
  });
});

describe("produce and read (JSON)", () => {
  it("round-trips one record with key, headers and a UTF-8 value", async () => {
    const topic = await newTopic();
    const produced = await call("POST", `/topics/${topic}/records`, { key: "d42", value: "21.5 °C", headers: { source: "sensor", raw: { base64: "AP8=" } } });
    expect(produced.status).toBe(200);
    expect(produced.json).toEqual({ offsets: [{ partition: 0, offset: 0 }] });

    const read = await call("GET", `/topics/${topic}/partitions/0/records?offset=0`);
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ topic, partition: 0, earliestOffset: 0, endOffset: 1, nextOffset: 1, epoch: expect.any(String) });
    expect(read.json.records).toEqual([
      { offset: 0, timestamp: expect.any(Number), key: "d42", value: "21.5 °C", headers: { source: "sensor", raw: { base64: "AP8=" }, "content-type": "text/plain; charset=utf-8" } },
    ]);
  });

  it("records the value's content type: from the JSON value, or contentType / a content-type header when given", async () => {
    const topic = await newTopic();
    await call("POST", `/topics/${topic}/records`, {
      records: [
        { value: "hello" },
        { value: { temp: 21.5 } },
        { value: 21.5 },
        { value: { base64: "AP8=" } },
        { value: null, key: "gone" },
        { value: "<a/>", contentType: "application/xml" },
        { value: '{"a":1}', headers: { "content-type": "application/json" } },
        { value: "x", contentType: "text/csv", headers: { "content-type": "text/csv" } },
      ],
    });
    const read = await call("GET", `/topics/${topic}/partitions/0/records`);
    expect(read.json.records.map((r: { headers: Record<string, unknown> }) => r.headers["content-type"] ?? null)).toEqual([
      "text/plain; charset=utf-8",
      "application/json",
      "application/json",
      "application/octet-stream",
      null,
      "application/xml",
      "application/json",
      "text/csv",
    ]);
    const path = `/topics/${topic}/records`;
    expectError(await call("POST", path, { value: "x", contentType: "not a type" }), 400, "BAD_REQUEST", "contentType");
    expectError(await call("POST", path, { value: "x", contentType: 7 }), 400, "BAD_REQUEST", "contentType");
    expectError(await call("POST", path, { value: null, contentType: "text/plain" }), 400, "BAD_REQUEST", "without a value");
    expectError(await call("POST", path, { value: "x", contentType: "text/plain", headers: { "content-type": "text/csv" } }), 400, "BAD_REQUEST", "disagree");
  });

  it("returns batch offsets in input order, contiguous per partition, and keeps order on read", async () => {
    const topic = await newTopic(2);
    const records = Array.from({ length: 20 }, (_, i) => ({ value: `v${i}`, partition: i % 2 }));
    const produced = await call("POST", `/topics/${topic}/records`, { records, acks: "all" });
    expect(produced.status).toBe(200);
    expect(produced.json.offsets).toEqual(records.map((_, i) => ({ partition: i % 2, offset: Math.floor(i / 2) })));
    const read = await call("GET", `/topics/${topic}/partitions/1/records?offset=0&max=100`);
    expect(read.json.records.map((r: { value: string }) => r.value)).toEqual(records.filter((r) => r.partition === 1).map((r) => r.value));
  });

  it("places keyed records with Kafka's partitioner", async () => {
    const topic = await newTopic(3);
    const produced = await call("POST", `/topics/${topic}/records`, { key: "user-42", value: "v" });
    expect(produced.json.offsets[0].partition).toBe(1); // toPositive(murmur2("user-42")) % 3
  });

  it("renders bytes exactly: base64 for invalid UTF-8, text (BOM kept) for valid UTF-8, JSON text for JSON values, null for null", async () => {
    const topic = await newTopic();
    await call("POST", `/topics/${topic}/records`, {
      records: [{ value: { base64: "/w==" } }, { value: "\uFEFFbom" }, { value: { temp: 21.5, ok: true } }, { value: null, key: "tombstone" }, { value: 42 }],
    });
    const read = await call("GET", `/topics/${topic}/partitions/0/records`);
    expect(read.json.records.map((r: { value: unknown }) => r.value)).toEqual([{ base64: "/w==" }, "\uFEFFbom", '{"temp":21.5,"ok":true}', null, "42"]);
    expect(read.json.records[3].key).toBe("tombstone");
  });

  it("accepts acks as a query parameter; acks=0 answers 202 without offsets", async () => {
    const topic = await newTopic();
    const all = await call("POST", `/topics/${topic}/records?acks=all`, { value: "durable" });
    expect(all.status).toBe(200);
    expect(all.json.offsets).toEqual([{ partition: 0, offset: 0 }]);
    const none = await call("POST", `/topics/${topic}/records?acks=0`, { value: "fire-and-forget" });
    expect(none.status).toBe(202);
    expect(none.raw.length).toBe(0);
    const read = await call("GET", `/topics/${topic}/partitions/0/records`);
    expect(read.json.records.map((r: { value: string }) => r.value)).toEqual(["durable", "fire-and-forget"]);
    expectError(await call("POST", `/topics/${topic}/records?acks=2`, { value: "v" }), 400, "BAD_REQUEST", "acks");
    expectError(await call("POST", `/topics/${topic}/records?acks=1`, { records: [{ value: "v" }], acks: "all" }), 400, "BAD_REQUEST", "acks given twice");
  });

  it("writes a retried batch once when it carries the same producerId and sequence", async () => {
    const topic = await newTopic();
    const body = { records: [{ value: "a" }, { value: "b" }], producerId: "cli-1", sequence: 7 };
    const first = await call("POST", `/topics/${topic}/records`, body);
    const retry = await call("POST", `/topics/${topic}/records`, body);
    expect(retry.json).toEqual(first.json);
    expect((await call("GET", `/topics/${topic}`)).json.partitionInfo[0].endOffset).toBe(2);
  });

  it("auto-creates an unknown topic on produce when topics.autoCreate is on", async () => {
    const produced = await call("POST", "/topics/autocreated/records", { value: "v" });
    expect(produced.status).toBe(200);
    expect((await call("GET", "/topics/autocreated")).status).toBe(200);
  });

  it("answers 404 UNKNOWN_TOPIC on produce to an unknown topic when auto-create is off", async () => {
    const strict = await startTestNode({ topics: { autoCreate: false } });
    expectError(await call("POST", "/topics/missing/records", { value: "v" }, {}, strict.url), 404, "UNKNOWN_TOPIC");
    expectError(await call("GET", "/topics/missing", undefined, {}, strict.url), 404, "UNKNOWN_TOPIC");
  });

  it("resolves offset=earliest/latest, honours max, and reports nextOffset to continue from", async () => {
    const topic = await newTopic();
    await call("POST", `/topics/${topic}/records`, { records: Array.from({ length: 5 }, (_, i) => ({ value: `v${i}` })) });
    const page = await call("GET", `/topics/${topic}/partitions/0/records?offset=earliest&max=2`);
    expect(page.json.records.map((r: { offset: number }) => r.offset)).toEqual([0, 1]);
    expect(page.json.nextOffset).toBe(2);
    const next = await call("GET", `/topics/${topic}/partitions/0/records?offset=${page.json.nextOffset}&max=10`);
    expect(next.json.records.map((r: { offset: number }) => r.offset)).toEqual([2, 3, 4]);
    const latest = await call("GET", `/topics/${topic}/partitions/0/records?offset=latest`);
    expect(latest.json).toMatchObject({ records: [], nextOffset: 5, endOffset: 5 });
    const atEnd = await call("GET", `/topics/${topic}/partitions/0/records?offset=5`);
    expect(atEnd.json.records).toEqual([]);
  });

  it("long-polls with waitMs: answers as soon as a record arrives, or empty at the deadline", async () => {
    const topic = await newTopic();
    // the long poll is waiting once the node tails the partition for it (the log was empty)
    const tail = vi.spyOn(node.broker, "tail");
    onTestFinished(() => tail.mockRestore());
    const started = Date.now();
    const polling = call("GET", `/topics/${topic}/partitions/0/records?offset=0&waitMs=10000`);
    await waitFor(() => tail.mock.calls.some(([t]) => t === topic), { timeoutMs: 5000, what: "the long poll to wait on the partition" });
    await call("POST", `/topics/${topic}/records`, { value: "late" });
    const reply = await polling;
    expect(reply.json.records.map((r: { value: string }) => r.value)).toEqual(["late"]);
    expect(Date.now() - started).toBeLessThan(5000);

    const t0 = Date.now();
    const empty = await call("GET", `/topics/${topic}/partitions/0/records?offset=1&waitMs=300`);
    expect(empty.json.records).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it("answers 416 OFFSET_OUT_OF_RANGE past the end offset, naming the readable range", async () => {
    const topic = await newTopic();
    await call("POST", `/topics/${topic}/records`, { value: "only" });
    expectError(await call("GET", `/topics/${topic}/partitions/0/records?offset=2`), 416, "OFFSET_OUT_OF_RANGE", "0..1");
  });

  it("answers 404 UNKNOWN_PARTITION for a partition the topic does not have, on read and produce", async () => {
    const topic = await newTopic(2);
    expectError(await call("GET", `/topics/${topic}/partitions/2/records`), 404, "UNKNOWN_PARTITION");
    expectError(await call("POST", `/topics/${topic}/records`, { value: "v", partition: 5 }), 404, "UNKNOWN_PARTITION");
  });

  it("rejects bad read parameters with 400 BAD_REQUEST", async () => {
    const topic = await newTopic();
    expectError(await call("GET", `/topics/${topic}/partitions/x/records`), 400, "BAD_REQUEST", "partition");
    expectError(await call("GET", `/topics/${topic}/partitions/0/records?offset=-1`), 400, "BAD_REQUEST", "offset");
    expectError(await call("GET", `/topics/${topic}/partitions/0/records?max=0`), 400, "BAD_REQUEST", "max");
    expectError(await call("GET", `/topics/${topic}/partitions/0/records?waitMs=999999`), 400, "BAD_REQUEST", "waitMs");
  });
});

describe("produce errors", () => {
  it("answers 400 BAD_REQUEST for a body that is not JSON", async () => {
    const topic = await newTopic();
    expectError(await call("POST", `/topics/${topic}/records`, "{not json"), 400, "BAD_REQUEST", "not valid JSON");
    expectError(await call("POST", "/topics", "{"), 400, "BAD_REQUEST", "not valid JSON");
    expectError(await call("POST", `/topics/${topic}/records`, ""), 400, "BAD_REQUEST", "empty");
  });

  it("answers 400 BAD_REQUEST for records of the wrong shape, saying which field", async () => {
    const topic = await newTopic();
    const path = `/topics/${topic}/records`;
    expectError(await call("POST", path, { key: "k" }), 400, "BAD_REQUEST", "record.value: missing");
    expectError(await call("POST", path, { value: "v", partiton: 1 }), 400, "BAD_REQUEST", 'did you mean "partition"');
    expectError(await call("POST", path, { records: [] }), 400, "BAD_REQUEST", "non-empty array");
    expectError(await call("POST", path, { records: [{ value: "ok" }, { value: { base64: "not base64!" } }] }), 400, "BAD_REQUEST", "records[1].value.base64");
    expectError(await call("POST", path, { value: "v", key: 5 }), 400, "BAD_REQUEST", "record.key");
    expectError(await call("POST", path, { value: "v", headers: { h: null } }), 400, "BAD_REQUEST", "headers.h");
    expectError(await call("POST", path, { value: "v", partition: -1 }), 400, "BAD_REQUEST", "partition");
    expectError(await call("POST", path, { value: "v", timestamp: "now" }), 400, "BAD_REQUEST", "timestamp");
    expectError(await call("POST", path, { records: [{ value: "v" }], producerId: "p" }), 400, "BAD_REQUEST", "sequence");
    expectError(await call("POST", path, "v", { "content-type": "application/xml" }), 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type application/json, application/cbor, application/x-ndjson");
    expect((await call("GET", `/topics/${topic}`)).json.partitionInfo[0].endOffset).toBe(0);
  });

  it("answers 413 FRAME_TOO_LARGE for a body over limits.maxFrameBytes, and the connection still works", async () => {
    const topic = await newTopic();
    expectError(await call("POST", `/topics/${topic}/records`, { value: "x".repeat(100_000) }), 413, "FRAME_TOO_LARGE", "limits.maxFrameBytes");
    // far over the limit: answered at once and the connection closed
    expectError(await call("POST", `/topics/${topic}/records`, { value: "x".repeat(2_000_000) }), 413, "FRAME_TOO_LARGE");
    expect((await call("POST", `/topics/${topic}/records`, { value: "fits" })).status).toBe(200);
    expect((await call("GET", `/topics/${topic}`)).json.partitionInfo[0].endOffset).toBe(1);
  });

  it("answers 413 RECORD_TOO_LARGE for a record over limits.maxRecordBytes in a body that fits", async () => {
    const topic = await newTopic();
    expectError(await call("POST", `/topics/${topic}/records`, { value: "x".repeat(40_000) }), 413, "RECORD_TOO_LARGE", "limits.maxRecordBytes");
  });
});

describe("CBOR", () => {
  it("accepts a CBOR body with native byte strings and serves CBOR reads with bytes intact", async () => {
    const topic = await newTopic();
    const value = new Uint8Array([0, 1, 2, 0xfe, 0xff]);
    const produced = await call(
      "POST",
      `/topics/${topic}/records`,
      encodeCbor({ records: [{ key: new Uint8Array([9, 9]), value, headers: { h: new Uint8Array([7]) } }, { value: "text" }], acks: 1 }),
      { "content-type": "application/cbor" },
    );
    expect(produced.status).toBe(200);
    expect(produced.json.offsets).toEqual([
      { partition: 0, offset: 0 },
      { partition: 0, offset: 1 },
    ]);

    const read = await call("GET", `/topics/${topic}/partitions/0/records?offset=0`, undefined, { accept: "application/cbor" });
    expect(read.status).toBe(200);
    expect(read.contentType).toBe("application/cbor");
    const decoded = decodeCbor(read.raw) as { records: Array<{ key: Uint8Array | null; value: Uint8Array; headers: Record<string, Uint8Array> }> };
    expect(new Uint8Array(decoded.records[0]!.value)).toEqual(value);
    expect(new Uint8Array(decoded.records[0]!.key!)).toEqual(new Uint8Array([9, 9]));
    expect(new Uint8Array(decoded.records[0]!.headers.h!)).toEqual(new Uint8Array([7]));
    expect(Buffer.from(decoded.records[1]!.value).toString()).toBe("text");
    expect(decoded.records[1]!.key).toBeNull();

    // the same bytes through JSON: not UTF-8, so base64
    const json = await call("GET", `/topics/${topic}/partitions/0/records?offset=0&max=1`);
    expect(json.json.records[0].value).toEqual({ base64: Buffer.from(value).toString("base64") });
  });

  it("answers 400 BAD_REQUEST for a body that is not CBOR", async () => {
    const topic = await newTopic();
    expectError(await call("POST", `/topics/${topic}/records`, new Uint8Array([0xff, 0xff, 0x00]), { "content-type": "application/cbor" }), 400, "BAD_REQUEST", "CBOR");
  });
});

describe("routing", () => {
  it("answers 404 NOT_FOUND for unknown routes and methods", async () => {
    expectError(await call("GET", "/nope"), 404, "NOT_FOUND", "GET /nope");
    expectError(await call("PUT", "/topics"), 404, "NOT_FOUND", "PUT /topics");
    expectError(await call("POST", "/healthz", {}), 404, "NOT_FOUND");
  });
});
