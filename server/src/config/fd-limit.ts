import { readFileSync } from "node:fs";

/** File descriptors a node keeps for itself (log segments, indexes, Redis, listeners) besides client sockets. */
export const FD_RESERVE = 1024;

/** The process's soft limit of open files (`ulimit -n`), from /proc (Linux); null where it cannot be read. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.trim().split(/\s+/)[3];
    if (soft === undefined || soft === "unlimited") return null;
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null; // not Linux: no limit known, the configured maximum applies as is
  }
}

/**
 * `limits.maxConnections`, lowered so that client sockets cannot take the descriptors the
 * node needs for its own files: at most the open-file limit minus FD_RESERVE (and at least
 * 1). `lowered` says whether the configured value was above it.
 */
export function effectiveMaxConnections(configured: number, fdLimit: number | null): { max: number; lowered: boolean } {
  if (fdLimit === null) return { max: configured, lowered: false };
  const room = Math.max(1, fdLimit - FD_RESERVE);
  return configured > room ? { max: room, lowered: true } : { max: configured, lowered: false };
}
