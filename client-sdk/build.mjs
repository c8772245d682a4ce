// Builds @tributary/client into dist/:
//   index.js / protocol.js / codes.js         ESM for bundlers and Node (deps external)
//   index.cjs / protocol.cjs / codes.cjs      CommonJS for require()
//   *.d.ts                                    declarations (tsc -p tsconfig.build.json)
//   tributary.min.js                          minified browser bundle, IIFE global `Tributary`
//   tributary.esm.min.js                      the same as an ES module
// and prints the browser bundle's gzip size (budget: 17 KB, see README.md "Build").
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";
import { emitDeclarations, swapDist } from "../scripts/package-build.mjs";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const GZIP_BUDGET = 17 * 1024;

const entries = { index: "src/index.ts", protocol: "src/protocol/index.ts", codes: "src/codes.ts" };

/** esbuild options of the browser bundle; the web console builds the same bundle in-process. */
export function browserBundleOptions(format) {
  return {
    absWorkingDir: root,
    entryPoints: [join(root, "src/index.ts")],
    bundle: true,
    minify: true,
    format,
    ...(format === "iife" ? { globalName: "Tributary" } : {}),
    platform: "browser",
    target: ["es2020"],
    // The SDK loads `ws` only where there is no WebSocket; browsers never reach it.
    external: ["ws"],
    // cbor-x is ~11 KB gzip; cbor-lite speaks the same CBOR in ~1.5 KB (cbor-lite.test.ts).
    alias: { "cbor-x": join(root, "src/cbor/cbor-lite.ts") },
    legalComments: "none",
  };
}

async function main() {
  // Built beside dist/ and swapped in at the end: a test or node reading dist/ meanwhile
  // (npm pack runs this build) sees the old files or the new ones, never a half-written one.
  const out = join(root, `.dist-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  const library = {
    absWorkingDir: root,
    entryPoints: Object.entries(entries).map(([name, src]) => ({ in: join(root, src), out: name })),
    bundle: true,
    outdir: out,
    platform: "neutral",
    target: ["es2022"],
    external: ["cbor-x", "ws"],
    sourcemap: true,
    logLevel: "warning",
  };
  try {
    await esbuild.build({ ...library, format: "esm", outExtension: { ".js": ".js" } });
    await esbuild.build({ ...library, format: "cjs", platform: "node", outExtension: { ".js": ".cjs" } });

    await esbuild.build({ ...browserBundleOptions("iife"), outfile: join(out, "tributary.min.js"), logLevel: "warning" });
    await esbuild.build({ ...browserBundleOptions("esm"), outfile: join(out, "tributary.esm.min.js"), logLevel: "warning" });

    emitDeclarations(root, out);
    swapDist(root, out, dist);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }

  const min = readFileSync(join(dist, "tributary.min.js"));
  const gz = gzipSync(min, { level: 9 }).length;
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  console.log(`dist/tributary.min.js: ${kb(min.length)} minified, ${kb(gz)} gzip (budget ${kb(GZIP_BUDGET)})${gz > GZIP_BUDGET ? "  OVER BUDGET" : ""}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
