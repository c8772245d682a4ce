/**
 * TLS with real clients (docs/security.md#tls): a test CA and server certificates for
 * 127.0.0.1/localhost made with openssl in a temp dir (no committed keys); `tributary
 * start` as a child process; mosquitto_pub/sub --cafile and MQTT.js mqtts:// over MQTTS,
 * curl --cacert over HTTPS; certificate reloads (a watched file replaced, and SIGHUP) seen by
 * new MQTTS, HTTPS and WSS connections while an open WebSocket keeps receiving;
 * tls.require without the plain MQTT port; a key that does not match refused at start;
 * the SDK over wss:// in headless Chromium, the test CA trusted through an NSS database
 * made with certutil (Debian libnss3-tools), as a user would import a company CA.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import mqtt from "mqtt";
import { connect as connectSdk, type TributaryClient } from "@tributary/client";
import WebSocket from "ws";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN } from "./helpers/node-process.ts";
import { waitFor, within } from "./helpers/wait.ts";

const run = promisify(execFile);
let dir: string;

/** A CA, and server certificates `a` and `b` it signed for localhost and 127.0.0.1; `wrong` = a key of another pair. */
async function makeCerts(): Promise<void> {
  const ossl = (...args: string[]) => run("openssl", args, { cwd: dir });
  await ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Tributary Test CA");
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  for (const name of ["a", "b"]) {
    await ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", "/CN=localhost");
    await ossl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", "ext.cnf");
  }
}

async function serialOf(file: string): Promise<string> {
  const { stdout } = await run("openssl", ["x509", "-in", file, "-noout", "-serial"], { cwd: dir });
  return stdout.trim().replace(/^serial=/, "").toUpperCase();
}

interface TlsNode {
  child: ChildProcess;
  line: string;
  https: number;
  mqtts: number;
  mqtt: number | null;
  stderr(): string;
  stop(): Promise<void>;
}

async function startTlsNode(extra: string[] = [], files = { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") }): Promise<TlsNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-tls-node-"));
  const child = spawn(process.execPath, [BIN, "start", "--port", "0", "--mqtt-port", "0", "--mqtt-tls-port", "0", "--tls-cert-file", files.cert, "--tls-key-file", files.key, "--data-dir", dataDir, ...extra], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const line = await within(
    new Promise<string>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        stdout += d.toString();
        const m = /^tributary listening .*$/m.exec(stdout);
        if (m) resolve(m[0]);
      });
      void exited.then((code) => reject(new Error(`node exited with ${code}:\n${stderr}`)));
    }),
    20_000,
    "the TLS node's listening line",
  );
  const port = (name: string) => {
    const m = new RegExp(` ${name}=([^\\s]+)`).exec(line)![1]!;
    return m === "off" ? null : Number(m.split(":").at(-1));
  };
  return {
    child,
    line,
    https: port("https")!,
    mqtts: port("mqtts")!,
    mqtt: port("mqtt"),
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Serial of the certificate a new TLS connection to `port` is shown (verified against the test CA, SNI localhost). */
function peerSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca: caPem() }, () => {
      resolve(socket.getPeerCertificate().serialNumber.toUpperCase());
      socket.end();
    });
    socket.once("error", reject);
  });
}

let ca: Buffer | undefined;
const caPem = () => (ca ??= readFileSync(join(dir, "ca.pem")));

/** `peerSerial`, or null while the port refuses (the instant between a reload's close and listen). */
const peerSerialOrNull = (port: number) => peerSerial(port).catch(() => null);

/** The `ws` package trusting the test CA, as the SDK's WebSocket (Node 20 has no global one). */
class TestCaWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols, { ca: caPem(), perMessageDeflate: false });
  }
}

/** An SDK client over wss:// that never reconnects: a dropped connection shows as a `disconnected` event. */
function wssClient(port: number): { client: TributaryClient; connects: () => number; drops: unknown[] } {
  const client = connectSdk(`wss://127.0.0.1:${port}`, { WebSocket: TestCaWebSocket, reconnect: false });
  let connects = 0;
  const drops: unknown[] = [];
  client.on("connected", () => connects++);
  client.on("disconnected", (e) => drops.push(e));
  return { client, connects: () => connects, drops };
}

/** Replaces `to` with a copy of `from` by rename, as certbot and Kubernetes do (never a half-written file). */
function replaceFile(from: string, to: string): void {
  copyFileSync(from, `${to}.tmp`);
  renameSync(`${to}.tmp`, to);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tributary-tls-test-"));
  await makeCerts();
  copyFileSync(join(dir, "a.pem"), join(dir, "cert.pem"));
  copyFileSync(join(dir, "a.key"), join(dir, "key.pem"));
}, 30_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("TLS listeners", () => {
  let node: TlsNode;
  beforeAll(async () => {
    copyFileSync(join(dir, "a.pem"), join(dir, "cert.pem"));
    copyFileSync(join(dir, "a.key"), join(dir, "key.pem"));
    node = await startTlsNode();
  }, 30_000);
  afterAll(() => node?.stop());

  it("names-the-tls-endpoints-in-the-listening-line", () => {
    expect(node.line).toMatch(/^tributary listening http=off mqtt=127\.0\.0\.1:\d+ https=127\.0\.0\.1:\d+ mqtts=127\.0\.0\.1:\d+$/);
  });

  it("serves-https-to-curl-with-the-test-ca", async () => {
    const { stdout } = await run("curl", ["-sS", "--cacert", join(dir, "ca.pem"), `https://127.0.0.1:${node.https}/healthz`]);
    expect(JSON.parse(stdout)).toMatchObject({ status: "ok" });
    // and refuses a client that does not trust the CA
    await expect(run("curl", ["-sS", `https://127.0.0.1:${node.https}/healthz`])).rejects.toThrow();
  });

  it("carries-mosquitto-pub-to-mosquitto-sub-over-mqtts", async () => {
    const sub = spawn("stdbuf", ["-o0", "-e0", "mosquitto_sub", "--cafile", join(dir, "ca.pem"), "-h", "127.0.0.1", "-p", String(node.mqtts), "-t", "tls-room/#", "-q", "1", "-C", "1", "-W", "15", "-v", "-d"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let debug = "";
    sub.stdout.on("data", (d: Buffer) => (out += d.toString()));
    sub.stderr.on("data", (d: Buffer) => (debug += d.toString()));
    const done = new Promise<number | null>((resolve) => sub.once("exit", (code) => resolve(code)));
    // -d prints the SUBACK before any message (stdbuf: unbuffered): the subscription is in place.
    await waitFor(() => /received SUBACK/i.test(out + debug), { what: "mosquitto_sub's SUBACK" }).catch((err: unknown) => {
      sub.kill();
      throw new Error(`${String(err)}; mosquitto_sub said: ${out}${debug}`);
    });
    await run("mosquitto_pub", ["--cafile", join(dir, "ca.pem"), "-h", "127.0.0.1", "-p", String(node.mqtts), "-t", "tls-room/1", "-m", "over-tls", "-q", "1"]);
    expect(await within(done, 10_000, "mosquitto_sub to exit after one message")).toBe(0);
    expect(out).toContain("tls-room/1 over-tls");
  });

  it("carries-the-sdk-over-wss-in-chromium-trusting-the-test-ca", async () => {
    // Chromium reads trusted CAs from $HOME/.pki/nssdb: a fresh one holding only the test CA.
    const home = join(dir, "chromium-home");
    const nssdb = join(home, ".pki", "nssdb");
    await run("mkdir", ["-p", nssdb]);
    await run("certutil", ["-d", `sql:${nssdb}`, "-N", "--empty-password"]);
    await run("certutil", ["-d", `sql:${nssdb}`, "-A", "-t", "C,,", "-n", "tributary-test-ca", "-i", join(dir, "ca.pem")]);
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
      env: { ...process.env, HOME: home },
    });
    try {
      const page = await browser.newPage();
      const origin = `https://localhost:${node.https}`;
      // Trusted: the console page loads over HTTPS with no certificate error...
      const response = await page.goto(`${origin}/`);
      expect(response?.status()).toBe(200);
      await page.addScriptTag({ url: `${origin}/tributary.min.js` });
      // ...and the SDK publishes and receives over wss:// from that page.
      const got = await page.evaluate(async (url) => {
        const T = (window as unknown as { Tributary: typeof import("@tributary/client") }).Tributary;
        const client = T.connect(url);
        const first = new Promise<unknown>((resolve, reject) => {
          const sub = client.subscribe("wss-room", (msg) => resolve(msg.value), { from: "earliest" });
          sub.once("error", reject);
        });
        await client.publish("wss-room", { over: "wss" });
        const value = await first;
        await client.close();
        return value;
      }, origin.replace("https:", "wss:"));
      expect(got).toEqual({ over: "wss" });
    } finally {
      await browser.close();
    }
    // Without the CA, the same page is refused (the trust above came from the NSS database).
    const untrusting = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"], env: { ...process.env, HOME: join(dir, "empty-home") } });
    try {
      await expect((await untrusting.newPage()).goto(`https://localhost:${node.https}/`)).rejects.toThrow(/ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await untrusting.close();
    }
  });

  it("carries-mqttjs-mqtts-with-the-ca", async () => {
    const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${node.mqtts}`, { ca: caPem(), servername: "localhost", reconnectPeriod: 0 });
    try {
      await client.subscribeAsync("tls-js/#", { qos: 1 });
      const got = new Promise<string>((resolve) => client.once("message", (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
      await client.publishAsync("tls-js/x", "hello", { qos: 1 });
      expect(await within(got, 10_000, "the MQTT.js message")).toBe("tls-js/x hello");
    } finally {
      await client.endAsync();
    }
  });
});

describe("TLS certificate reload", () => {
  it("serves-a-replaced-certificate-to-new-https-and-wss-connections-while-open-websockets-keep-receiving", async () => {
    copyFileSync(join(dir, "a.pem"), join(dir, "cert.pem"));
    copyFileSync(join(dir, "a.key"), join(dir, "key.pem"));
    const node = await startTlsNode();
    const clients: TributaryClient[] = [];
    try {
      const [serialA, serialB] = [await serialOf("a.pem"), await serialOf("b.pem")];
      expect(await peerSerial(node.https)).toBe(serialA);
      // A WebSocket opened before the reload, subscribed and receiving.
      const old = wssClient(node.https);
      clients.push(old.client);
      const oldGot: unknown[] = [];
      old.client.subscribe("reload-room", (msg) => void oldGot.push(msg.value), { from: "earliest" });
      await old.client.publish("reload-room", { n: 1 });
      await waitFor(() => oldGot.length === 1, { what: "the first message on the open WebSocket" });

      // Key first, then certificate, each by rename: the watcher (no signal) reloads once both match.
      replaceFile(join(dir, "b.key"), join(dir, "key.pem"));
      replaceFile(join(dir, "b.pem"), join(dir, "cert.pem"));
      await waitFor(async () => (await peerSerialOrNull(node.https)) === serialB, { what: "HTTPS to show certificate b" });
      expect(node.stderr()).toMatch(/"event":"tls\.https_reloaded".*"oldSerial":"[0-9A-F]+".*"newSerial":"[0-9A-F]+"/);
      expect(await peerSerial(node.mqtts)).toBe(serialB);

      // curl trusting the CA gets an answer over HTTPS with the new certificate, /metrics counts the reload.
      const { stdout: health } = await run("curl", ["-sS", "--cacert", join(dir, "ca.pem"), `https://127.0.0.1:${node.https}/healthz`]);
      expect(JSON.parse(health)).toMatchObject({ status: "ok" });
      const { stdout: metrics } = await run("curl", ["-sS", "--cacert", join(dir, "ca.pem"), `https://127.0.0.1:${node.https}/metrics`]);
      expect(metrics).toMatch(/^tributary_https_certificate_reloads_total\{outcome="reloaded"\} 1$/m);
      expect(metrics).toMatch(/^tributary_https_certificate_reloads_total\{outcome="failed"\} 0$/m);

      // A new WSS connection (certificate b) publishes; the old socket (certificate a) receives it, and the other way round.
      const fresh = wssClient(node.https);
      clients.push(fresh.client);
      const freshGot: unknown[] = [];
      fresh.client.subscribe("reload-room", (msg) => void freshGot.push(msg.value), { from: "earliest" });
      await fresh.client.publish("reload-room", { n: 2 });
      await old.client.publish("reload-room", { n: 3 });
      await waitFor(() => oldGot.length === 3 && freshGot.length === 3, { what: "messages 2 and 3 on both WebSockets" });
      expect(oldGot).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      expect(freshGot).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      // The old WebSocket is the one opened before the reload: never dropped, never reopened.
      expect(old.drops).toEqual([]);
      expect(old.connects()).toBe(1);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await node.stop();
    }
  }, 30_000);

  it("serves-the-new-certificate-to-new-mqtts-and-https-connections-after-sighup", async () => {
    // The node is given symlinks in a directory of their own; the files they point to are
    // replaced in another directory, which the node does not watch: only SIGHUP reloads.
    const links = join(dir, "sighup-links");
    const live = join(dir, "sighup-live");
    rmSync(links, { recursive: true, force: true });
    rmSync(live, { recursive: true, force: true });
    mkdirSync(links);
    mkdirSync(live);
    copyFileSync(join(dir, "a.pem"), join(live, "cert.pem"));
    copyFileSync(join(dir, "a.key"), join(live, "key.pem"));
    symlinkSync(join(live, "cert.pem"), join(links, "cert.pem"));
    symlinkSync(join(live, "key.pem"), join(links, "key.pem"));
    const node = await startTlsNode([], { cert: join(links, "cert.pem"), key: join(links, "key.pem") });
    try {
      const [serialA, serialB] = [await serialOf("a.pem"), await serialOf("b.pem")];
      expect(await peerSerial(node.mqtts)).toBe(serialA);
      expect(await peerSerial(node.https)).toBe(serialA);
      replaceFile(join(dir, "b.pem"), join(live, "cert.pem"));
      replaceFile(join(dir, "b.key"), join(live, "key.pem"));
      node.child.kill("SIGHUP");
      await waitFor(async () => (await peerSerialOrNull(node.mqtts)) === serialB, { what: "MQTTS to show certificate b" });
      await waitFor(async () => (await peerSerialOrNull(node.https)) === serialB, { what: "HTTPS to show certificate b" });
      expect(node.stderr()).toContain("tls.https_reloaded");
      expect(node.stderr()).not.toContain("tls.https_reload_failed");
      const { stdout } = await run("curl", ["-sS", "--cacert", join(dir, "ca.pem"), `https://127.0.0.1:${node.https}/healthz`]);
      expect(JSON.parse(stdout)).toMatchObject({ status: "ok" });
    } finally {
      await node.stop();
    }
  }, 30_000);
});

describe("tls.require and bad files", () => {
  it("opens-no-plain-mqtt-port-with-tls-require", async () => {
    copyFileSync(join(dir, "a.pem"), join(dir, "cert.pem"));
    copyFileSync(join(dir, "a.key"), join(dir, "key.pem"));
    const node = await startTlsNode(["--tls-require"]);
    try {
      expect(node.line).toMatch(/ http=off mqtt=off https=\S+ mqtts=\S+$/);
      const { stdout } = await run("curl", ["-sS", "--cacert", join(dir, "ca.pem"), `https://127.0.0.1:${node.https}/healthz`]);
      expect(JSON.parse(stdout)).toMatchObject({ status: "ok" });
      // plain HTTP on the HTTPS port gets no HTTP answer
      await expect(run("curl", ["-sS", "--max-time", "5", `http://127.0.0.1:${node.https}/healthz`])).rejects.toThrow();
    } finally {
      await node.stop();
    }
  }, 30_000);

  it("refuses-to-start-with-a-key-that-does-not-match-the-certificate", async () => {
    copyFileSync(join(dir, "a.pem"), join(dir, "cert.pem"));
    copyFileSync(join(dir, "b.key"), join(dir, "key.pem"));
    const dataDir = mkdtempSync(join(tmpdir(), "tributary-tls-node-"));
    const result = await run(process.execPath, [BIN, "start", "--port", "0", "--mqtt-port", "0", "--mqtt-tls-port", "0", "--tls-cert-file", join(dir, "cert.pem"), "--tls-key-file", join(dir, "key.pem"), "--data-dir", dataDir]).then(
      () => ({ code: 0, stderr: "" }),
      (err: { code: number; stderr: string }) => err,
    );
    rmSync(dataDir, { recursive: true, force: true });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("does not match the certificate");
  }, 30_000);
});
