/**
 * `npm run bench -- auth [--duration 3s] [--concurrency 16]`
 *
 * What authentication and permission checks cost, measured in one run against two
 * `tributary start` processes (file engine, fsync never): one in open mode (no auth
 * configured: anonymous clients, nothing asked) and one enforcing a JWT secret, an argon2id
 * password file and an ACL file.
 *
 * - MQTT connects/s (CONNECT → CONNACK → close, `--concurrency` at once, MQTT 3.1.1 over
 *   TCP): anonymous (open node) vs a JWT password vs an argon2id password (enforcing node).
 * - Publish throughput, one client, 100 in flight, 64-byte payloads, acks after the log
 *   append: MQTT QoS 1 PUBLISH → PUBACK and WebSocket SDK `publish` → `ack`, permission
 *   checks on (JWT identity granted `#`) vs open mode. Target: ≥ 95 % (decisions are cached
 *   per identity and topic, docs/security.md "Revocation and caching"). The two modes run
 *   alternately, twice each, and the best of each is kept (the machine is shared: a
 *   single pass measures the neighbours as much as the node); the node's CPU per acked
 *   message is printed too, which contention disturbs less.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import mqttPacket, { type Packet } from "mqtt-packet";
import WebSocket from "ws";
import { decodeFrame, encodeFrame, SUBPROTOCOL_CBOR, WS_PATH, type Frame } from "@tributary/client/protocol";
import { hashPassword } from "../../server/src/auth/password-hash.ts";
import { cpuSeconds, parseDuration, startTributary, type TributaryProc } from "./bench-process.ts";

const SECRET = "bench-secret-bench-secret-bench-secret-bench";
const PAYLOAD = Buffer.alloc(64, 0x61);
const WINDOW = 100;

interface Credentials {
  username?: string;
  password?: string;
}

/** One MQTT 3.1.1 CONNECT over a fresh socket: resolves with the CONNACK return code, socket closed. */
function connectOnce(port: number, clientId: string, creds: Credentials): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", noDelay: true });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on("packet", (p: Packet) => {
      if (p.cmd !== "connack") return;
      socket.destroy();
      resolve(p.returnCode ?? 0);
    });
    socket.on("data", (d) => parser.parse(d));
    socket.on("error", reject);
    socket.on("connect", () => {
      socket.write(
        mqttPacket.generate({
          cmd: "connect",
          protocolId: "MQTT",
          protocolVersion: 4,
          clientId,
          clean: true,
          keepalive: 0,
          ...(creds.username !== undefined ? { username: creds.username } : {}),
          ...(creds.password !== undefined ? { password: Buffer.from(creds.password) } : {}),
        }),
      );
    });
  });
}

/** Connects/s over `durationMs` with `concurrency` CONNECTs in flight; every one must be accepted. */
async function connectRate(port: number, creds: Credentials, durationMs: number, concurrency: number, tag: string): Promise<number> {
  let done = 0;
  let n = 0;
  const t0 = performance.now();
  const until = t0 + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const code = await connectOnce(port, `${tag}-${++n}`, creds);
        if (code !== 0) throw new Error(`${tag}: CONNACK ${code}`);
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

/** MQTT QoS 1 publishes/s (PUBACKed) from one client with WINDOW in flight. */
async function mqttPublishRate(port: number, creds: Credentials, durationMs: number, tag: string): Promise<number> {
  const socket = net.connect({ port, host: "127.0.0.1", noDelay: true });
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  let onPacket: (p: Packet) => void = () => undefined;
  parser.on("packet", (p: Packet) => onPacket(p));
  socket.on("data", (d) => parser.parse(d));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  await new Promise<void>((resolve, reject) => {
    onPacket = (p) => (p.cmd === "connack" && p.returnCode === 0 ? resolve() : reject(new Error(`${tag}: ${JSON.stringify(p)}`)));
    socket.write(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId: `${tag}-pub`, clean: true, keepalive: 0, ...creds, password: creds.password === undefined ? undefined : Buffer.from(creds.password) }));
  });
  const topic = `bench/${tag}`;
  let id = 0;
  let inflight = 0;
  let acked = 0;
  let counting = false;
  let counted = 0;
  let running = true;
  const send = () => {
    const out: Buffer[] = [];
    while (running && inflight < WINDOW) {
      id = id === 65535 ? 1 : id + 1;
      inflight++;
      out.push(mqttPacket.generate({ cmd: "publish", topic, payload: PAYLOAD, qos: 1, messageId: id, retain: false, dup: false }));
    }
    if (out.length > 0) socket.write(Buffer.concat(out));
  };
  onPacket = (p) => {
    if (p.cmd !== "puback") return;
    inflight--;
    acked++;
    if (counting) counted++;
    if (inflight <= WINDOW / 2) send();
  };
  send();
  await new Promise((r) => setTimeout(r, Math.min(1000, durationMs / 3))); // warm-up
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  const rate = counted / ((performance.now() - t0) / 1000);
  running = false;
  socket.destroy();
  if (acked === 0) throw new Error(`${tag}: nothing acknowledged`);
  return rate;
}

/** WebSocket SDK `publish` (acks 1) per second from one client with WINDOW in flight. */
async function wsPublishRate(httpPort: number, token: string | undefined, durationMs: number, tag: string): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${httpPort}${WS_PATH}`, [SUBPROTOCOL_CBOR], { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const send = (frame: Record<string, unknown>) => ws.send(encodeFrame(frame as unknown as Frame, "cbor"));
  let onFrame: (f: { op: string; id?: number; code?: string; message?: string }) => void = () => undefined;
  ws.on("message", (data: Buffer) => onFrame(decodeFrame(new Uint8Array(data), "cbor") as { op: string }));
  await new Promise<void>((resolve, reject) => {
    onFrame = (f) => (f.op === "welcome" ? resolve() : reject(new Error(`${tag}: ${JSON.stringify(f)}`)));
    send({ op: "hello", id: 1, protocol: 1, ...(token ? { token } : {}) });
  });
  let next = 2;
  let inflight = 0;
  let counting = false;
  let counted = 0;
  let running = true;
  let failure: string | null = null;
  const pump = () => {
    while (running && inflight < WINDOW) {
      inflight++;
      send({ op: "publish", id: next++, topic: `bench-${tag}`, value: PAYLOAD, acks: 1 });
    }
  };
  onFrame = (f) => {
    if (f.op === "error") failure ??= `${f.code}: ${f.message}`;
    if (f.op !== "ack" && f.op !== "error") return;
    inflight--;
    if (counting) counted++;
    if (inflight <= WINDOW / 2) pump();
  };
  pump();
  await new Promise((r) => setTimeout(r, Math.min(1000, durationMs / 3)));
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  const rate = counted / ((performance.now() - t0) / 1000);
  running = false;
  ws.terminate();
  if (failure) throw new Error(`${tag}: publish refused: ${failure}`);
  return rate;
}

const fmt = (r: number) => (r >= 1000 ? `${(r / 1000).toFixed(1)}k` : r.toFixed(0));
const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(1)} %`;

export async function run(args: string[]): Promise<void> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i === -1 ? undefined : args[i + 1];
  };
  const durationMs = parseDuration(flag("--duration") ?? "3s");
  const concurrency = Number(flag("--concurrency") ?? 16);
  const dir = mkdtempSync(join(tmpdir(), "tributary-bench-auth-"));
  const secretFile = join(dir, "jwt.secret");
  const passwordFile = join(dir, "passwd");
  const aclFile = join(dir, "acl");
  writeFileSync(secretFile, SECRET);
  writeFileSync(passwordFile, `bench:${await hashPassword("bench-pw")}\n`);
  writeFileSync(aclFile, "user bench\ntopic readwrite #\n");
  const token = await new SignJWT({ sub: "bench", acl: { all: ["#"] } })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));

  let open: TributaryProc | undefined;
  let enforced: TributaryProc | undefined;
  try {
    open = await startTributary();
    enforced = await startTributary(["--auth-jwt-secret-file", secretFile, "--auth-password-file", passwordFile, "--auth-acl-file", aclFile]);
    process.stdout.write(`duration ${durationMs / 1000} s per point, ${concurrency} connects in flight, ${WINDOW} publishes in flight\n\n`);

    const anon = await connectRate(open.mqttPort, {}, durationMs, concurrency, "anon");
    const jwt = await connectRate(enforced.mqttPort, { username: "bench", password: token }, durationMs, concurrency, "jwt");
    const argon = await connectRate(enforced.mqttPort, { username: "bench", password: "bench-pw" }, durationMs, concurrency, "argon2");
    process.stdout.write("MQTT connects/s (CONNECT → CONNACK → close)\n");
    process.stdout.write(`  anonymous (open mode)   ${fmt(anon).padStart(8)}\n`);
    process.stdout.write(`  JWT (HS256)             ${fmt(jwt).padStart(8)}   ${pct(jwt, anon)} of anonymous\n`);
    process.stdout.write(`  argon2id password       ${fmt(argon).padStart(8)}   ${pct(argon, anon)} of anonymous\n\n`);

    /** Best of two alternating passes: [rate, node CPU µs per acked message]. */
    const best = async (proc: TributaryProc, measure: () => Promise<number>): Promise<[number, number]> => {
      const cpu0 = cpuSeconds(proc.pid);
      const t0 = performance.now();
      const rate = await measure();
      const cpu = ((cpuSeconds(proc.pid) - cpu0) * 1e6) / (rate * ((performance.now() - t0) / 1000));
      return [rate, cpu];
    };
    const o = open;
    const e = enforced;
    const points = {
      mqttOpen: () => best(o, () => mqttPublishRate(o.mqttPort, {}, durationMs, "mqtt-open")),
      mqttAuth: () => best(e, () => mqttPublishRate(e.mqttPort, { username: "bench", password: token }, durationMs, "mqtt-auth")),
      wsOpen: () => best(o, () => wsPublishRate(o.httpPort, undefined, durationMs, "ws-open")),
      wsAuth: () => best(e, () => wsPublishRate(e.httpPort, token, durationMs, "ws-auth")),
    };
    const results: Record<keyof typeof points, Array<[number, number]>> = { mqttOpen: [], mqttAuth: [], wsOpen: [], wsAuth: [] };
    for (let pass = 0; pass < 2; pass++) {
      for (const name of Object.keys(points) as Array<keyof typeof points>) results[name].push(await points[name]());
    }
    const top = (name: keyof typeof points) => results[name].reduce((a, b) => (b[0] > a[0] ? b : a));
    const line = (label: string, open: [number, number], auth: [number, number]) =>
      `  ${label}   open ${fmt(open[0]).padStart(7)} (${open[1].toFixed(1)} µs CPU/msg)   checked ${fmt(auth[0]).padStart(7)} (${auth[1].toFixed(1)} µs CPU/msg)   ${pct(auth[0], open[0])}${auth[0] >= 0.95 * open[0] ? "" : "  BELOW TARGET"}\n`;
    process.stdout.write("publish throughput, acked msgs/s, best of 2 alternating passes (permission checks on vs open mode; target >= 95 %)\n");
    process.stdout.write(line("MQTT QoS 1", top("mqttOpen"), top("mqttAuth")));
    process.stdout.write(line("WS publish", top("wsOpen"), top("wsAuth")));
    process.stdout.write(`  passes: ${(Object.keys(results) as Array<keyof typeof points>).map((k) => `${k} ${results[k].map((r) => fmt(r[0])).join("/")}`).join(", ")}\n`);
  } finally {
    await open?.stop();
    await enforced?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
