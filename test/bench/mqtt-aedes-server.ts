/**
 * Aedes (in-memory persistence) on a free port on 127.0.0.1, for `npm run bench -- mqtt`.
 * Prints `listening <port>` on stdout; exits on SIGTERM.
 */
import net from "node:net";
import { Aedes } from "aedes";

const aedes = await Aedes.createBroker();
const server = net.createServer({ noDelay: true }, (socket) => {
  socket.setNoDelay(true);
  aedes.handle(socket);
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === "object" && address ? address.port : 0}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  aedes.close(() => process.exit(0));
});
