// Builds @tributary/streams into dist/: index.js (ESM), index.cjs (CommonJS), *.d.ts
// (tsc -p tsconfig.build.json). @tributary/client stays an external dependency.
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { emitDeclarations, swapDist } from "../scripts/package-build.mjs";

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
  emitDeclarations(root, out);
  swapDist(root, out, dist);
} finally {
  rmSync(out, { recursive: true, force: true });
}
