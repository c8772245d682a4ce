/**
 * HTTP body limits against a real node (startNode, file engine, 127.0.0.1, port 0): a
 * Content-Length over `limits.maxFrameBytes` is answered 413 FRAME_TOO_LARGE from the header,
 * before any body is sent (raw sockets that send the headers only), including lengths uWS
 * itself refuses ("1e9", ten digits); a chunked body that grows past the limit gets 413; the
 * connection stays usable or is closed after the answer, never closed without one.
 *
 * The per-address request rate (`limits.httpRequestRatePerIp`, docs/security.md#limits), on
 * a second node: over it 429 QUEUE_FULL with Retry-After and the API's error body, counted
 * in /metrics; /healthz, /readyz and /metrics never counted; another source address
 * (127.0.0.x) unaffected; the address let in again once its bucket refilled; a refused
 * request's body drained (connection kept) or, chunked, the connection closed after the
 * answer.
 */
import { testNodeConfig } from "./helpers/node-config.ts";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../server/src/logger.ts";
import { startNode, type TributaryNode } from "../server/src/node.ts";
import { waitFor, within } from "./helpers/wait.ts";

const LIMIT = 4096;
let node: TributaryNode;
let dataDir: string;
let base: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "tributary-http-limits-"));
  const config = testNodeConfig(dataDir, { limits: { maxFrameBytes: LIMIT, maxRecordBytes: LIMIT } });
  node = await startNode(config, { logger: createLogger("error") });
  base = node.url;
  const created = await fetch(`${base}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "limits", partitions: 1 }) });
  expect(created.status).toBe(201);
});

afterAll(async () => {
  await node?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface RawReply {
  status: number;
  headers: string;
  body: string;
}

/**
 * One raw connection: `send` the bytes, read replies as they come. `next()` resolves with the
 * next complete HTTP response (by its Content-Length); `closed` when the server ends the socket.
 */
class RawClient {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  #buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  constructor(port: number, localAddress?: string) {
    this.socket = net.connect({ port, host: "127.0.0.1", ...(localAddress ? { localAddress } : {}) });
    this.socket.on("data", (d) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.socket.on("error", () => {}); // a reset after the answer is the server's choice; the replies are what is checked
    this.closed = new Promise((resolve) => this.socket.on("close", () => {
      resolve();
      for (const w of this.#waiters.splice(0)) w();
    }));
  }

  send(data: string): void {
    this.socket.write(data);
  }

  async next(what: string): Promise<RawReply> {
    return within(
      (async () => {
        for (;;) {
          const text = this.#buffer.toString("latin1");
          const end = text.indexOf("\r\n\r\n");
          if (end !== -1) {
            const headers = text.slice(0, end);
            const length = Number(/content-length: *(\d+)/i.exec(headers)?.[1] ?? "0");
            if (this.#buffer.length >= end + 4 + length) {
              const body = this.#buffer.subarray(end + 4, end + 4 + length).toString("utf8");
              this.#buffer = this.#buffer.subarray(end + 4 + length);
              return { status: Number(headers.split(" ")[1]), headers, body };
            }
          }
          if (this.socket.destroyed) throw new Error(`connection closed before ${what} (got ${JSON.stringify(text.slice(0, 200))})`);
          await new Promise<void>((resolve) => this.#waiters.push(resolve));
        }
      })(),
      5000,
      what,
    );
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function port(url = base): number {
  return Number(new URL(url).port);
}

function postHead(contentLength: string | null, extra = ""): string {
  const length = contentLength === null ? "Transfer-Encoding: chunked\r\n" : `Content-Length: ${contentLength}\r\n`;
  return `POST /topics/limits/records HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${length}${extra}\r\n`;
}

function expect413(reply: RawReply): void {
  expect(reply.status).toBe(413);
  expect(JSON.parse(reply.body).error.code).toBe("FRAME_TOO_LARGE");
  expect(JSON.parse(reply.body).error.message).toContain("limits.maxFrameBytes");
}

const GOOD = JSON.stringify({ value: "fits" });

describe("HTTP body limits", () => {
  for (const length of ["1e9", "1000000000", "99999999999999999999"]) {
    it(`answers 413 from a Content-Length of ${length} (refused by uWS) before any body, then closes`, async () => {
      const client = new RawClient(port());
      try {
        client.send(postHead(length));
        const reply = await client.next(`the 413 for Content-Length ${length}`);
        expect413(reply);
        expect(reply.headers).toMatch(/connection: close/i);
        await within(client.closed, 5000, "the connection to close after the 413");
      } finally {
        client.destroy();
      }
    });
  }

  it("answers 413 from a Content-Length far over the limit before any body, and closes after the answer", async () => {
    const client = new RawClient(port());
    try {
      client.send(postHead(String(LIMIT * 100)));
      const reply = await client.next("the 413");
      expect413(reply);
      expect(reply.headers).toMatch(/connection: close/i);
      await within(client.closed, 5000, "the connection to close after the 413");
    } finally {
      client.destroy();
    }
  });

  it("answers 413 from a Content-Length a little over the limit before the body, and the connection stays usable", async () => {
    const client = new RawClient(port());
    try {
      const length = LIMIT + 100;
      client.send(postHead(String(length)));
      const reply = await client.next("the 413 before the body");
      expect413(reply);
      expect(reply.headers).not.toMatch(/connection: close/i);
      // the announced body is consumed, then the same connection takes a good request
      client.send("x".repeat(length));
      client.send(postHead(String(Buffer.byteLength(GOOD))) + GOOD);
      const ok = await client.next("the answer to the next request on the same connection");
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body).offsets ?? JSON.parse(ok.body)).toBeTruthy();
    } finally {
      client.destroy();
    }
  });

  it("answers 400 to a Content-Length that is not a number instead of dropping the connection", async () => {
    const client = new RawClient(port());
    try {
      client.send(postHead("abc"));
      const reply = await client.next("the 400");
      expect(reply.status).toBe(400);
      expect(JSON.parse(reply.body).error.code).toBe("BAD_REQUEST");
      await within(client.closed, 5000, "the connection to close after the 400");
    } finally {
      client.destroy();
    }
  });

  it("answers 413 to a chunked body once it grows past the limit, without waiting for its end", async () => {
    const client = new RawClient(port());
    try {
      client.send(postHead(null));
      const chunk = "x".repeat(1024);
      for (let i = 0; i < 5; i++) client.send(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      // no terminating 0-chunk: the answer must not wait for the end of the body
      expect413(await client.next("the 413 for a chunked body past the limit"));
      await within(client.closed, 5000, "the connection to close after the 413");
    } finally {
      client.destroy();
    }
  });

  it("fetch: a body over the limit gets 413, a chunked stream past the limit gets 413, and the node still takes records", async () => {
    const big = await fetch(`${base}/topics/limits/records`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ value: "x".repeat(LIMIT * 2) }) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe("FRAME_TOO_LARGE");
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(`{"value":"${"y".repeat(LIMIT * 2)}`));
        controller.enqueue(encoder.encode(`"}`));
        controller.close();
      },
    });
    const chunked = await fetch(`${base}/topics/limits/records`, { method: "POST", headers: { "content-type": "application/json" }, body: stream, duplex: "half" } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { error: { code: string } }).error.code).toBe("FRAME_TOO_LARGE");
    const ok = await fetch(`${base}/topics/limits/records`, { method: "POST", headers: { "content-type": "application/json" }, body: GOOD });
    expect(ok.status).toBe(200);
  });
});

describe("HTTP request rate per address", () => {
  const RATE = 2;
  const BURST = 3;
  let rated: TributaryNode;
  let ratedDir: string;

  beforeAll(async () => {
    ratedDir = mkdtempSync(join(tmpdir(), "tributary-http-rate-"));
    rated = await startNode(testNodeConfig(ratedDir, { limits: { httpRequestRatePerIp: RATE, httpRequestBurstPerIp: BURST } }), { logger: createLogger("error") });
  });

  afterAll(async () => {
    await rated?.close();
    rmSync(ratedDir, { recursive: true, force: true });
  });

  /** One request on a connection of its own from `from` (a 127.0.0.x source address). */
  async function request(from: string, path: string, method = "GET"): Promise<RawReply> {
    const client = new RawClient(port(rated.url), from);
    try {
      client.send(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      return await client.next(`${method} ${path} from ${from}`);
    } finally {
      client.destroy();
    }
  }

  /** Takes the whole burst of `from` (each answered 200) so its next request is over the rate. */
  async function exhaust(from: string): Promise<void> {
    for (let i = 0; i < BURST; i++) expect((await request(from, "/topics")).status).toBe(200);
  }

  function refusals(metrics: string): number {
    return Number(/^tributary_limit_refusals_total\{limit="http_request_rate_per_ip",gateway="http"\} (\d+)$/m.exec(metrics)?.[1]);
  }

  it("answers-429-queue-full-with-retry-after-once-an-address-is-over-its-rate-and-counts-it", async () => {
    const before = refusals((await request("127.0.0.1", "/metrics")).body);
    await exhaust("127.0.0.1");
    const refused = await request("127.0.0.1", "/topics");
    expect(refused.status).toBe(429);
    expect(Number(/retry-after: *(\d+)/i.exec(refused.headers)?.[1])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.body)).toEqual({ error: { code: "QUEUE_FULL", message: expect.stringContaining("limits.httpRequestRatePerIp") } });
    // Unknown paths count too (the 404 fallback is an API route).
    expect((await request("127.0.0.1", "/no-such-route")).status).toBe(429);
    expect(refusals((await request("127.0.0.1", "/metrics")).body)).toBe(before + 2);
  });

  it("never-counts-health-probes-or-metrics-scrapes", async () => {
    await exhaust("127.0.0.3");
    expect((await request("127.0.0.3", "/topics")).status).toBe(429);
    for (let i = 0; i < 3 * BURST; i++) {
      for (const path of ["/healthz", "/readyz", "/metrics"]) expect((await request("127.0.0.3", path)).status, path).toBe(200);
    }
  });

  it("limits-each-address-on-its-own", async () => {
    await exhaust("127.0.0.4");
    expect((await request("127.0.0.4", "/topics")).status).toBe(429);
    expect((await request("127.0.0.5", "/topics")).status).toBe(200);
  });

  it("lets-an-address-in-again-once-its-bucket-refilled", async () => {
    await exhaust("127.0.0.6");
    const refused = await request("127.0.0.6", "/topics");
    expect(refused.status).toBe(429);
    const retryAfterS = Number(/retry-after: *(\d+)/i.exec(refused.headers)?.[1]);
    // A refused request takes no token, so asking again does not delay the refill.
    await waitFor(async () => (await request("127.0.0.6", "/topics")).status === 200, { timeoutMs: retryAfterS * 1000 + 2000, intervalMs: 50, what: "a token back within Retry-After" });
  });

  it("drains-a-refused-body-with-a-content-length-and-keeps-the-connection", async () => {
    await exhaust("127.0.0.7");
    const client = new RawClient(port(rated.url), "127.0.0.7");
    try {
      client.send(postHead(String(Buffer.byteLength(GOOD))) + GOOD);
      const first = await client.next("the 429 for a POST with a body");
      expect(first.status).toBe(429);
      expect(first.headers).not.toMatch(/connection: close/i);
      client.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      expect((await client.next("the next answer on the same connection")).status).toBe(200);
    } finally {
      client.destroy();
    }
  });

  it("closes-the-connection-after-refusing-a-chunked-body", async () => {
    await exhaust("127.0.0.8");
    const client = new RawClient(port(rated.url), "127.0.0.8");
    try {
      client.send(postHead(null) + `${GOOD.length.toString(16)}\r\n${GOOD}\r\n`);
      const reply = await client.next("the 429 for a chunked POST");
      expect(reply.status).toBe(429);
      expect(reply.headers).toMatch(/connection: close/i);
      await within(client.closed, 5000, "the connection to close after the 429");
    } finally {
      client.destroy();
    }
  });
});
