// Builds @tributary/streams into dist/: index.js (ESM), index.cjs (CommonJS), *.d.ts
// (tsc -p tsconfig.build.json). @tributary/client stays an external dependency.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
// Built beside dist/ and swapped in at the end, like the SDK's build.
const out = join(root, `.dist-${process.pid}`);
rmSync(out, { recursive: true, force: true });
const library = {
  absWorkingDir: root,
  entryPoints: [{ in: join(root, "src/index.ts"), out: "index" }],
  bundle: true,
  outdir: out,
  platform: "node",
  target: ["es2022"],
  external: ["@tributary/client"],
  sourcemap: true,
  logLevel: "warning",
};
try {
  await esbuild.build({ ...library, format: "esm", outExtension: { ".js": ".js" } });
  await esbuild.build({ ...library, format: "cjs", outExtension: { ".js": ".cjs" } });
  const tsc = join(root, "..", "node_modules", ".bin", "tsc");
  execFileSync(tsc, ["-p", join(root, "tsconfig.build.json"), "--outDir", out], { stdio: "inherit" });
  // Sources import "./x.ts"; published declarations must say "./x.js".
  for (const file of readdirSync(out, { recursive: true, encoding: "utf8" })) {
    if (!file.endsWith(".d.ts")) continue;
    const path = join(out, file);
    const text = readFileSync(path, "utf8");
    const fixed = text.replace(/(from\s+|import\()(["'])(\.{1,2}\/[^"']+)\.ts\2/g, "$1$2$3.js$2");
    if (fixed !== text) writeFileSync(path, fixed);
  }
  const old = join(root, `.dist-old-${process.pid}`);
  try {
    renameSync(dist, old);
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
  renameSync(out, dist);
  rmSync(old, { recursive: true, force: true });
} finally {
  rmSync(out, { recursive: true, force: true });
}
