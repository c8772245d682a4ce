// Shared by the builds of the published workspace packages (client-sdk, streams): the
// declarations step and the swap of a finished build into dist/.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const tsc = fileURLToPath(new URL("../node_modules/.bin/tsc", import.meta.url));

/** Writes `*.d.ts` of the package at `root` (tsc -p tsconfig.build.json) into `out`, with `./x.js` imports. */
export function emitDeclarations(root, out) {
  execFileSync(tsc, ["-p", join(root, "tsconfig.build.json"), "--outDir", out], { stdio: "inherit" });
  // Sources import "./x.ts"; published declarations must say "./x.js".
  for (const file of readdirSync(out, { recursive: true, encoding: "utf8" })) {
    if (!file.endsWith(".d.ts")) continue;
    const path = join(out, file);
    const text = readFileSync(path, "utf8");
    const fixed = text.replace(/(from\s+|import\()(["'])(\.{1,2}\/[^"']+)\.ts\2/g, "$1$2$3.js$2");
    if (fixed !== text) writeFileSync(path, fixed);
  }
}

/**
 * Replaces `dist` by the finished build `out` with two renames, so a test or node reading
 * dist/ meanwhile (npm pack runs the build) sees the old files or the new ones, never a
 * half-written set. A concurrent build that installed its dist/ between the renames wins.
 */
export function swapDist(root, out, dist) {
  const old = join(root, `.dist-old-${process.pid}`);
  try {
    renameSync(dist, old);
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
  try {
    renameSync(out, dist);
  } catch (err) {
    if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
  }
  rmSync(old, { recursive: true, force: true });
}
