/**
 * The SDK browser bundle when the node runs from its TypeScript sources (tests, `npm run
 * dev:start`): client-sdk/dist/tributary.min.js when it exists and is newer than the SDK
 * sources, otherwise built in-process with esbuild (options from client-sdk/build.mjs).
 * The compiled node (server/build.mjs) never loads this module: it serves the bundle built
 * ahead of time, and the build replaces this file with a stub.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!entry.endsWith(".ts") || entry.endsWith(".test.ts")) continue;
    newest = Math.max(newest, statSync(join(dir, entry)).mtimeMs);
  }
  return newest;
}

export async function buildBrowserBundle(): Promise<Uint8Array> {
  const sdkDir = dirname(createRequire(import.meta.url).resolve("@tributary/client/package.json"));
  const dist = join(sdkDir, "dist", "tributary.min.js");
  try {
    if (statSync(dist).mtimeMs >= newestMtime(join(sdkDir, "src"))) return readFileSync(dist);
  } catch {
    // No dist (or it cannot be read): build the bundle below; a failed build is logged and counted by attachConsole.
  }
  const { browserBundleOptions } = (await import(pathToFileURL(join(sdkDir, "build.mjs")).href)) as {
    browserBundleOptions(format: "iife" | "esm"): Record<string, unknown>;
  };
  const esbuild = await import("esbuild");
  const result = await esbuild.build({ ...browserBundleOptions("iife"), outfile: join(sdkDir, "dist", "tributary.min.js"), write: false, logLevel: "silent" });
  const file = result.outputFiles?.find((f) => f.path.endsWith(".js"));
  if (!file) throw new Error("esbuild produced no bundle");
  return file.contents;
}
