/**
 * The node's one uWS app: `uWS.App()` without TLS, `uWS.SSLApp` (HTTPS, WSS, MQTT over
 * WSS at /mqtt) with it.
 *
 * Certificate reload, and its limit: HTTPS/WSS keep the certificate the node started
 * with until a restart. uWS (v20.30 here) loads the app's SSL context from files once,
 * when the app is created, and has no call to replace it. Its per-server-name (SNI)
 * contexts (`addServerName`, `missingServerName`) were tried and rejected: each server
 * name gets its own, empty router (a request on it finds none of the node's routes and
 * the connection is closed with no reply), binding routes to it goes through `domain()`,
 * which prints to stdout (where `tributary start` writes only its listening line), and a
 * context made from a missing or bad file crashes the process. Re-creating the app would
 * mean re-mounting every gateway and dropping every open WebSocket. So on a reload the
 * node logs `tls.https_restart_needed` (warn) with the serial still served on HTTPS; MQTTS
 * (node:tls) takes the new certificate for new connections (mqtt-gateway.ts).
 */
import uWS from "uWebSockets.js";
import type { Logger } from "../../logger.ts";
import type { TlsCertificates } from "./tls-certificates.ts";

export function createUwsApp(certs: TlsCertificates | null, log: Logger): uWS.TemplatedApp {
  if (certs === null) return uWS.App();
  const app = uWS.SSLApp(certs.uwsOptions());
  const served = certs.material.leaf.serial;
  certs.on("change", (material) => {
    log.warn("tls.https_restart_needed", {
      servedSerial: served,
      newSerial: material.leaf.serial,
      note: "HTTPS/WSS keep the start-up certificate until the node restarts (a uWS limit); MQTTS already uses the new one",
    });
  });
  return app;
}
