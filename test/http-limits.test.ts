/**
 * HTTP body limits against a real node (startNode, file engine, 127.0.0.1, port 0): a
 * Content-Length over `limits.maxFrameBytes` is answered 413 FRAME_TOO_LARGE from the header,
 * before any body is sent (raw sockets that send the headers only), including lengths uWS
 * itself refuses ("1e9", ten digits); a chunked body that grows past the limit gets 413; the
 * connection stays usable or is closed after the answer, never closed without one.
 */
import { testNodeConfig } from "./helpers/node-config.ts";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../server/src/logger.ts";
import { startNode, type TributaryNode } from "../server/src/node.ts";
import { within } from "./helpers/wait.ts";

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

  constructor(port: number) {
    this.socket = net.connect(port, "127.0.0.1");
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

function port(): number {
  return Number(new URL(base).port);
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
