/**
 * Load generator of `npm run bench -- connections`, one child process per protocol:
 * opens `count` idle connections to 127.0.0.1:`port` from source addresses 127.0.0.2 …
 * 127.0.0.(1+sources) (so ephemeral ports do not run out), at most `parallel` handshakes
 * at a time, and holds them until stdin closes.
 *
 * - `ws`: HTTP upgrade to /ws with subprotocol tributary.v1.json, then a `hello` text
 *   frame; answers pings with pongs (uWS pings idle sockets), ignores everything else.
 * - `mqtt`: MQTT 3.1.1 CONNECT (clean session, keep-alive 0), waits for CONNACK 0.
 *
 * Prints `progress <opened>` lines while opening, then `ready <opened> <failed>`;
 * `error <message>` if too many fail. Counts are held in plain arrays: the sockets are the
 * only per-connection state this process keeps.
 *
 * Usage: node --import tsx connections-client.ts <ws|mqtt> <port> <count> [sources] [parallel]
 */
import net from "node:net";
import { randomBytes } from "node:crypto";

const [kind, portArg, countArg, sourcesArg = "8", parallelArg = "256"] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const sources = Number(sourcesArg);
const parallel = Number(parallelArg);
if ((kind !== "ws" && kind !== "mqtt") || !port || !Number.isInteger(count)) {
  process.stderr.write("usage: connections-client.ts <ws|mqtt> <port> <count> [sources] [parallel]\n");
  process.exit(2);
}

const sockets: net.Socket[] = [];
let opened = 0;
let failed = 0;
let started = 0;
let firstError = "";

function mqttConnect(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  // Variable header: protocol name "MQTT", level 4, flags clean session, keep-alive 0.
  const variable = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 0]);
  const payload = Buffer.concat([Buffer.from([id.length >> 8, id.length & 0xff]), id]);
  const remaining = variable.length + payload.length; // < 128: one length byte
  return Buffer.concat([Buffer.from([0x10, remaining]), variable, payload]);
}

function wsTextFrame(text: string): Buffer {
  const body = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.alloc(body.length);
  for (let i = 0; i < body.length; i++) masked[i] = body[i]! ^ mask[i & 3]!;
  if (body.length >= 126) throw new Error("hello frame too long");
  return Buffer.concat([Buffer.from([0x81, 0x80 | body.length]), mask, masked]);
}

function wsPong(payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([Buffer.from([0x8a, 0x80 | payload.length]), mask, masked]);
}

/** Answers server pings; server frames are unmasked and, on an idle socket, small. */
function onWsFrames(socket: net.Socket, pending: { buf: Buffer }): void {
  let buf = pending.buf;
  while (buf.length >= 2) {
    const opcode = buf[0]! & 0x0f;
    let len = buf[1]! & 0x7f;
    let head = 2;
    if (len === 126) {
      if (buf.length < 4) break;
      len = buf.readUInt16BE(2);
      head = 4;
    } else if (len === 127) {
      if (buf.length < 10) break;
      len = Number(buf.readBigUInt64BE(2));
      head = 10;
    }
    if (buf.length < head + len) break;
    if (opcode === 0x9) socket.write(wsPong(buf.subarray(head, head + len)));
    buf = buf.subarray(head + len);
  }
  pending.buf = buf;
}

function openOne(i: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: `127.0.0.${2 + (i % sources)}` });
    let settled = false;
    const done = (ok: boolean, why?: string): void => {
      if (settled) return;
      settled = true;
      if (ok) {
        opened++;
        sockets.push(socket);
      } else {
        failed++;
        firstError ||= why ?? "unknown";
        socket.destroy();
      }
      resolve();
    };
    socket.on("error", (err) => done(false, err.message));
    socket.on("close", () => done(false, "closed during handshake"));
    socket.setNoDelay(true);
    if (kind === "mqtt") {
      socket.once("connect", () => socket.write(mqttConnect(`idle-${process.pid}-${i}`)));
      socket.once("data", (d) => done(d[0] === 0x20 && d[3] === 0, `CONNACK ${d.toString("hex")}`));
      return;
    }
    const key = randomBytes(16).toString("base64");
    socket.once("connect", () => {
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tributary.v1.json\r\n\r\n`,
      );
    });
    let head = Buffer.alloc(0);
    const pending: { buf: Buffer } = { buf: Buffer.alloc(0) };
    const onData = (d: Buffer): void => {
      if (!settled) {
        head = Buffer.concat([head, d]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!head.subarray(0, 12).toString().includes(" 101")) return done(false, head.subarray(0, end).toString().split("\r\n")[0]);
        socket.write(wsTextFrame(JSON.stringify({ op: "hello", id: 1, protocol: 1, clientId: `idle-${i}` })));
        pending.buf = head.subarray(end + 4);
        done(true);
      } else {
        pending.buf = pending.buf.length ? Buffer.concat([pending.buf, d]) : d;
      }
      onWsFrames(socket, pending);
    };
    socket.on("data", onData);
  });
}

async function worker(): Promise<void> {
  while (started < count) {
    const i = started++;
    await openOne(i);
    if ((opened + failed) % 5000 === 0) process.stdout.write(`progress ${opened}\n`);
  }
}

await Promise.all(Array.from({ length: Math.min(parallel, count) }, () => worker()));
// Handshake listeners stay: a socket closed by the server later is simply gone from the count.
if (failed > count / 100) process.stdout.write(`error ${failed} of ${count} failed, first: ${firstError}\n`);
process.stdout.write(`ready ${opened} ${failed}\n`);
process.stdin.resume();
process.stdin.on("end", () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
