/**
 * The README's layering holds: the broker is the gateways' only door to storage. No file
 * under server/src/gateway imports a value from server/src/log (types are fine: records,
 * headers), and none uses a log engine (`.engine`).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = new URL("../", import.meta.url).pathname;
const GATEWAY = join(ROOT, "server/src/gateway");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
  });
}

describe("layering", () => {
  const sources = files(GATEWAY).map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, "utf8") }));

  it("finds the gateway sources", () => {
    expect(sources.length).toBeGreaterThan(30);
  });

  it("gateways import only types from server/src/log", () => {
    const offending = sources.flatMap(({ path, text }) =>
      [...text.matchAll(/^import\s+(?!type\s)[^;]*from\s+"((?:\.\.\/)+log\/[^"]+)"/gm)].map((m) => `${path}: ${m[0]}`),
    );
    expect(offending).toEqual([]);
  });

  it("gateways never hold a log engine", () => {
    const offending = sources.filter(({ text }) => /\.engine\b/.test(text)).map(({ path }) => path);
    expect(offending).toEqual([]);
  });
});
