/**
 * A TCP proxy in front of a node, so a test can cut every connection abruptly (RST, no
 * WebSocket close frame) the way a network failure does, mid-stream, without the server's
 * cooperation. `sever()` drops current connections; new ones go through again.
 */
import net from "node:net";

export interface TcpProxy {
  port: number;
  url: string;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  /** Resets every open connection (both sides). */
  sever(): void;
  /** While true, bytes from the server are swallowed (acks "lost" on the way back). */
  dropDownstream: boolean;
  /** While true, new connections are reset at once (the node looks unreachable). */
  refuse: boolean;
  /** Connections reset because of `refuse` so far (failed connect attempts). */
  readonly refused: number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  const state = { dropDownstream: false, refuse: false, refused: 0 };
  const server = net.createServer((client) => {
    if (state.refuse) {
      state.refused++;
      client.on("error", () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.on("data", (chunk) => {
      if (!state.dropDownstream) client.write(chunk);
    });
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const proxy: TcpProxy = {
    port,
    url: `ws://127.0.0.1:${port}`,
    get connections() {
      return pairs.size;
    },
    get dropDownstream() {
      return state.dropDownstream;
    },
    set dropDownstream(value: boolean) {
      state.dropDownstream = value;
    },
    get refuse() {
      return state.refuse;
    },
    set refuse(value: boolean) {
      state.refuse = value;
    },
    get refused() {
      return state.refused;
    },
    sever() {
      for (const { client, upstream } of [...pairs]) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      pairs.clear();
    },
    async close() {
      proxy.sever();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
