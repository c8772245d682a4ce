/**
 * ReloadableUwsApp on its own (real uWS SSLApps on 127.0.0.1, certificates from a test CA
 * made with openssl, TlsCertificates without a watcher, reloaded by `reload()` as SIGHUP
 * does): routes replayed in order on the new app (the catch-all stays last), WebSockets of
 * the old app kept and reached by `publish`, and the failure paths, forced by a `listen`
 * that refuses: the old certificate keeps being served, or, with the port lost, the next
 * certificate change listens again. The node end to end: test/tls.test.ts.
 */
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type uWS from "uWebSockets.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { DEFAULT_CONFIG } from "../../config/config.ts";
import { createLogger, type Logger } from "../../logger.ts";
import { Metrics } from "../../metrics/metrics.ts";
import { listenExclusive } from "./listen-exclusive.ts";
import { ReloadableUwsApp } from "./reloadable-uws-app.ts";
import { TlsCertificates } from "./tls-certificates.ts";

const run = promisify(execFile);
let dir: string;
const serial: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tributary-reloadable-app-"));
  const ossl = (...args: string[]) => run("openssl", args, { cwd: dir });
  await ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Reload Test CA");
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  for (const name of ["a", "b", "c"]) {
    await ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", "/CN=localhost");
    await ossl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", "ext.cnf");
    const { stdout } = await ossl("x509", "-in", `${name}.pem`, "-noout", "-serial");
    serial[name] = stdout.trim().replace(/^serial=/, "").toUpperCase();
  }
}, 30_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Points cert.pem / key.pem at pair `name`. */
function use(name: string): void {
  copyFileSync(join(dir, `${name}.pem`), join(dir, "cert.pem"));
  copyFileSync(join(dir, `${name}.key`), join(dir, "key.pem"));
}

interface Harness {
  app: ReloadableUwsApp;
  certs: TlsCertificates;
  metrics: Metrics;
  logs: Array<{ event: string } & Record<string, unknown>>;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** An app on certificate a, with GET /hello, a WebSocket at /ws subscribing its sockets to "room", and a catch-all 404, listening on a free port. */
async function start(listen?: typeof listenExclusive): Promise<Harness> {
  use("a");
  const logs: Harness["logs"] = [];
  const log: Logger = createLogger("debug", (line) => logs.push(JSON.parse(line) as Harness["logs"][number]));
  const certs = await TlsCertificates.open({ ...DEFAULT_CONFIG.tls, certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") }, log, { watch: false });
  const metrics = new Metrics();
  const app = new ReloadableUwsApp(certs, log, metrics, listen ? { listen } : {});
  app.app.get("/hello", (res) => void res.end("hello"));
  app.app.ws("/ws", { open: (ws) => void ws.subscribe("room") });
  app.app.any("/*", (res) => void res.writeStatus("404 Not Found").end("none"));
  app.listen("127.0.0.1", 0);
  cleanups.push(() => {
    app.stopListening();
    certs.close();
  });
  return { app, certs, metrics, logs };
}

/** GET over HTTPS trusting the test CA, on a new connection: status, body, and the serial the server showed. */
function get(port: number, path: string): Promise<{ status: number; body: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port, path, ca: readFileSync(join(dir, "ca.pem")), agent: false }, (res) => {
      const peer = (res.socket as import("node:tls").TLSSocket).getPeerCertificate().serialNumber.toUpperCase();
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, serial: peer }));
    });
    req.on("error", reject);
  });
}

/** A WebSocket to /ws (subscribed to "room" once open), collecting what it receives. */
async function openWs(port: number): Promise<{ ws: WebSocket; got: string[] }> {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, { ca: readFileSync(join(dir, "ca.pem")) });
  const got: string[] = [];
  ws.on("message", (d: Buffer) => got.push(d.toString()));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  cleanups.push(() => ws.terminate());
  return { ws, got };
}

/** Resolves once `ws` has received `n` messages (each message is an event: no polling). */
function received(c: { ws: WebSocket; got: string[] }, n: number): Promise<void> {
  if (c.got.length >= n) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (c.got.length >= n) {
        c.ws.off("message", check);
        resolve();
      }
    };
    c.ws.on("message", check);
    c.ws.once("close", () => reject(new Error(`closed after ${c.got.length} of ${n} messages`)));
  });
}

async function counter(metrics: Metrics, outcome: string): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString("tributary_https_certificate_reloads_total");
  return Number(new RegExp(`outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1]);
}

describe("ReloadableUwsApp", () => {
  it("serves-every-route-with-the-new-certificate-and-keeps-old-websockets-reachable", async () => {
    const h = await start();
    const port = h.app.port;
    expect(await get(port, "/hello")).toEqual({ status: 200, body: "hello", serial: serial.a });
    const old = await openWs(port);

    use("b");
    expect(await h.certs.reload()).toEqual({ changed: true });
    // The swap happened in the change event: the next connection already gets b, same port.
    expect(h.app.port).toBe(port);
    expect(await get(port, "/hello")).toEqual({ status: 200, body: "hello", serial: serial.b });
    expect(await get(port, "/no-such-route")).toEqual({ status: 404, body: "none", serial: serial.b });
    const fresh = await openWs(port);
    expect(h.app.apps).toEqual({ count: 2, openSockets: [1, 1] });

    expect(h.app.app.publish("room", "one")).toBe(true);
    expect(h.app.app.numSubscribers("room")).toBe(2);
    await Promise.all([received(old, 1), received(fresh, 1)]);
    expect([old.got, fresh.got]).toEqual([["one"], ["one"]]);
    expect(h.logs.find((l) => l.event === "tls.https_reloaded")).toMatchObject({ oldSerial: serial.a, newSerial: serial.b, port });
    expect(await counter(h.metrics, "reloaded")).toBe(1);

    // A route mounted after the reload is on every app (the old one too).
    h.app.app.get("/late", (res) => void res.end("late"));
    expect(await get(port, "/late")).toMatchObject({ status: 200, body: "late" });
  });

  it("keeps-serving-the-old-certificate-when-the-new-app-cannot-listen", async () => {
    let refuse: uWS.TemplatedApp | null = null;
    let first: uWS.TemplatedApp | null = null;
    const h = await start((app, host, port) => {
      first ??= app;
      if (app !== first) refuse = app;
      return app === refuse ? false : listenExclusive(app, host, port);
    });
    const port = h.app.port;
    const ws = await openWs(port);

    use("b");
    await h.certs.reload();
    expect(h.logs.find((l) => l.event === "tls.https_reload_failed")).toMatchObject({ oldSerial: serial.a, newSerial: serial.b, serving: serial.a });
    expect(await counter(h.metrics, "failed")).toBe(1);
    expect(await counter(h.metrics, "reloaded")).toBe(0);
    expect(await get(port, "/hello")).toEqual({ status: 200, body: "hello", serial: serial.a });
    // The refused app was dropped; the WebSocket on the old one still gets what is published.
    expect(h.app.apps.count).toBe(1);
    h.app.app.publish("room", "still here");
    await received(ws, 1);
    expect(ws.got).toEqual(["still here"]);
  });

  it("listens-again-on-the-next-change-after-losing-the-port", async () => {
    let lose = false;
    const h = await start((app, host, port) => (lose ? false : listenExclusive(app, host, port)));
    const port = h.app.port;
    lose = true;
    use("b");
    await h.certs.reload();
    expect(h.logs.find((l) => l.event === "tls.https_reload_failed")).toMatchObject({ serving: null });
    expect(h.logs.some((l) => l.event === "tls.https_not_listening")).toBe(true);
    await expect(get(port, "/hello")).rejects.toThrow(/ECONNREFUSED/);

    lose = false;
    use("c");
    await h.certs.reload();
    expect(await get(port, "/hello")).toEqual({ status: 200, body: "hello", serial: serial.c });
    expect(h.logs.find((l) => l.event === "tls.https_reloaded")).toMatchObject({ oldSerial: serial.a, newSerial: serial.c });
  });

  it("stops-reloading-once-it-stopped-listening", async () => {
    const h = await start();
    const port = h.app.port;
    h.app.stopListening();
    use("b");
    await h.certs.reload();
    expect(h.logs.some((l) => l.event.startsWith("tls.https_"))).toBe(false);
    await expect(get(port, "/hello")).rejects.toThrow(/ECONNREFUSED/);
  });
});
