/**
 * The bare uWebSockets.js side of `npm run bench -- ws` (the ceiling), in its own process so
 * the loader and the server each get a core: a pub/sub server with no log, where every frame
 * a client sends is published to all connections that did not send ?role=pub. Prints
 * `listening <port>` on stdout, exits on SIGTERM. (Tributary's side is the compiled node.)
 */
import uWS from "uWebSockets.js";
import { SUBPROTOCOL_CBOR } from "@tributary/client/protocol";

const app = uWS.App();
app.ws<{ pub: boolean }>("/ws", {
  compression: uWS.DISABLED,
  maxPayloadLength: 1 << 20,
  maxBackpressure: 16 << 20,
  idleTimeout: 60,
  upgrade(res, req, context) {
    res.upgrade({ pub: req.getQuery("role") === "pub" }, req.getHeader("sec-websocket-key"), SUBPROTOCOL_CBOR, req.getHeader("sec-websocket-extensions"), context);
  },
  open(ws) {
    if (!ws.getUserData().pub) ws.subscribe("t");
  },
  message(_ws, message, isBinary) {
    app.publish("t", message, isBinary);
  },
});
const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen("127.0.0.1", 0, (s) => (s ? resolve(s) : reject(new Error("listen failed")))));
process.stdout.write(`listening ${uWS.us_socket_local_port(socket as unknown as uWS.us_socket)}\n`);
process.on("SIGTERM", () => {
  uWS.us_listen_socket_close(socket);
  process.exit(0);
});
