/**
 * Mosquitto 2's local-only default, checked by `startNode` (server/src/node.ts): with no authentication configured ("open" mode, where every client is
 * an anonymous admin), the node may bind only loopback addresses, unless
 * `auth.allowAnonymous` says so explicitly (then start-up logs a warning).
 */
import type { AuthConfig } from "./auth-service.ts";

/** Is `host` a loopback address or name (127.0.0.0/8, ::1, localhost)? Wildcards (0.0.0.0, ::) are not. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h.endsWith(".localhost") || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

function authConfigured(auth: AuthConfig): boolean {
  return auth.jwt.secretFile !== null || auth.jwt.publicKeyFile !== null || auth.jwt.jwksFile !== null || auth.passwordFile !== null || auth.aclFile !== null;
}

export type ExposureVerdict =
  | { readonly ok: true; readonly warning: string | null }
  | { readonly ok: false; readonly problem: string };

/**
 * May a node with `auth` listen on `hosts`? Refused: open mode on a non-loopback address
 * without allowAnonymous, with a message saying what to configure. Allowed with a warning:
 * the same with allowAnonymous, or anonymous clients allowed next to configured auth.
 */
export function checkExposure(auth: AuthConfig, hosts: readonly string[]): ExposureVerdict {
  const exposed = hosts.filter((h) => !isLoopbackHost(h));
  if (!authConfigured(auth)) {
    if (exposed.length === 0) return { ok: true, warning: null };
    if (auth.allowAnonymous) {
      return { ok: true, warning: `anonymous clients have full access (admin included) on ${exposed.join(", ")}: no authentication is configured and auth.allowAnonymous is true` };
    }
    return {
      ok: false,
      problem:
        `refusing to listen on ${exposed.join(", ")} without authentication: configure auth.jwt.secretFile, auth.jwt.publicKeyFile, ` +
        "auth.jwt.jwksFile or auth.passwordFile (docs/security.md), bind 127.0.0.1, or set auth.allowAnonymous (--allow-anonymous) to accept anonymous clients with full access",
    };
  }
  if (auth.allowAnonymous) {
    return { ok: true, warning: auth.aclFile === null ? "anonymous clients may publish and subscribe to every topic (auth.allowAnonymous without auth.aclFile)" : null };
  }
  return { ok: true, warning: null };
}
