/**
 * A hostile load generator (child process): floods one node's client ports from
 * 127.0.0.2 … 127.0.0.9 until stdin closes, then prints `done <json counts>`.
 *
 * - `mqtt-connect`: connection churn: connect, CONNECT, wait for CONNACK, close, again.
 * - `mqtt-publish`: a few connections publishing QoS 0 PUBLISH packets as fast as the socket takes them.
 * - `ws-upgrade`: WebSocket upgrade + hello, close, again.
 *
 * Usage: node --import tsx flood-proc.ts <kind> <port> [parallel]
 */
import net from "node:net";
import { randomBytes } from "node:crypto";

const [kind, portArg, parallelArg = "64"] = process.argv.slice(2);
const port = Number(portArg);
const parallel = Number(parallelArg);
let stop = false;
const counts = { attempts: 0, ok: 0, failed: 0, bytes: 0 };
let seq = 0;

function mqttConnect(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const variable = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 0]);
  return Buffer.concat([Buffer.from([0x10, variable.length + 2 + id.length]), variable, Buffer.from([0, id.length]), id]);
}

function mqttPublish(topic: string, payload: Buffer): Buffer {
  const t = Buffer.from(topic);
  const len = 2 + t.length + payload.length; // < 128
  return Buffer.concat([Buffer.from([0x30, len, 0, t.length]), t, payload]);
}

function source(): string {
  return `127.0.0.${2 + (seq++ % 8)}`;
}

function once(fn: (done: () => void) => void): Promise<void> {
  return new Promise((resolve) => fn(resolve));
}

/** Connection churn: connect, `hello` the server, wait for its first answer, close, again. */
async function churn(hello: () => string | Buffer, accepted: (first: Buffer) => boolean): Promise<void> {
  while (!stop) {
    counts.attempts++;
    await once((done) => {
      const s = net.connect({ host: "127.0.0.1", port, localAddress: source() });
      let finished = false;
      const end = (ok: boolean): void => {
        if (finished) return;
        finished = true;
        if (ok) counts.ok++;
        else counts.failed++;
        s.destroy();
        done();
      };
      s.on("error", () => end(false));
      s.on("close", () => end(false));
      s.once("connect", () => s.write(hello()));
      s.once("data", (d) => end(accepted(d)));
    });
  }
}

const mqttChurn = (): Promise<void> =>
  churn(
    () => mqttConnect(`flood-${process.pid}-${seq}`),
    (d) => d[0] === 0x20 && d[3] === 0,
  );

const wsChurn = (): Promise<void> =>
  churn(
    () =>
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\n` +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tributary.v1.json\r\n\r\n",
    (d) => d.subarray(0, 12).toString().includes(" 101"),
  );

async function mqttPublisher(): Promise<void> {
  while (!stop) {
    await once((done) => {
      const s = net.connect({ host: "127.0.0.1", port, localAddress: source() });
      const batch = Buffer.concat(Array.from({ length: 200 }, (_, i) => mqttPublish(`flood/${i % 10}`, randomBytes(64))));
      const pump = (): void => {
        while (!stop && !s.destroyed) {
          counts.attempts += 200;
          counts.bytes += batch.length;
          if (!s.write(batch)) return void s.once("drain", pump);
        }
        s.destroy();
      };
      s.on("error", () => counts.failed++);
      s.on("close", () => done());
      s.once("connect", () => s.write(mqttConnect(`flood-pub-${process.pid}-${seq}`)));
      s.once("data", (d) => {
        if (d[0] !== 0x20) return void s.destroy();
        counts.ok++;
        pump();
      });
    });
  }
}

const loop = kind === "mqtt-connect" ? mqttChurn : kind === "mqtt-publish" ? mqttPublisher : kind === "ws-upgrade" ? wsChurn : null;
if (!loop || !port) {
  process.stderr.write("usage: flood-proc.ts <mqtt-connect|mqtt-publish|ws-upgrade> <port> [parallel]\n");
  process.exit(2);
}
const workers = Array.from({ length: parallel }, () => loop());
process.stdout.write("started\n");
process.stdin.resume();
process.stdin.on("end", async () => {
  stop = true;
  await Promise.all(workers);
  process.stdout.write(`done ${JSON.stringify(counts)}\n`);
  process.exit(0);
});
