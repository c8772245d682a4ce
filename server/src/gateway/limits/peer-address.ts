import { isIPv6 } from "node:net";

/**
 * The key of a peer address for per-IP limits: IPv4 as is (`::ffff:10.0.0.1` and a
 * `host:port` suffix removed), IPv6 as its /64 (one subscriber's prefix, so a client cannot
 * step around a limit by rotating addresses inside its own network). The socket's peer
 * address only: `X-Forwarded-For` is not trusted (behind a proxy, every client shares the
 * proxy's address; docs/security.md#limits).
 */
export function peerKey(address: string): string {
  let a = address.trim().toLowerCase();
  if (a.startsWith("[")) a = a.slice(1, a.indexOf("]") === -1 ? undefined : a.indexOf("]"));
  else if (/^[\d.]+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(":"));
  if (a.startsWith("::ffff:") && a.includes(".")) return a.slice(7);
  if (!isIPv6(a)) {
    // "addr:port" with an IPv6 address (TcpTransport's `${address}:${port}`)
    const cut = a.lastIndexOf(":");
    const head = cut > 0 ? a.slice(0, cut) : a;
    if (isIPv6(head)) a = head;
    else return a;
    if (a.startsWith("::ffff:") && a.includes(".")) return a.slice(7);
  }
  return `${expand(a).slice(0, 4).join(":")}::/64`;
}

function expand(ip: string): string[] {
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const missing = 8 - left.length - right.length;
  return [...left, ...Array<string>(Math.max(0, missing)).fill("0"), ...right].map((g) => g.replace(/^0+(?=.)/, ""));
}
