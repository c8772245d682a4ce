// Compiles the node ahead of time, so `npm start` and the `tributary` bin run JavaScript
// only (no TypeScript loader, no esbuild at run time):
//
//   dist/main.js                               src/cli/main.ts bundled (ESM, Node 20): the
//                                              node's code, the SDK protocol sources and the
//                                              pure-JS npm dependencies; packages with native
//                                              code stay external (uWebSockets.js, @node-rs/*,
//                                              cbor-extract), resolved in node_modules
//   dist/src/**/*.lua                          the Redis Lua scripts
//   dist/src/gateway/http/console/*            the web console page, and tributary.min.js,
//                                              the SDK browser bundle, built here once
//
// A bundled module's `import.meta.url` is rewritten to its place in the dist/src mirror,
// so `new URL("./scripts/x.lua", import.meta.url)` finds the copy beside it.
//
//   node server/build.mjs              build
//   node server/build.mjs --if-stale   build only if a source is newer than dist/main.js
//                                      (the test setup runs this before every vitest run);
//                                      if the sources do not build, remove dist/main.js and
//                                      leave the error in dist/build-error.txt for the bin
//
// Files are written to a temporary name and renamed into place, so a node started while
// another process rebuilds reads either the old file or the new one, never half of one.
import { copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { browserBundleOptions } from "../client-sdk/build.mjs";

const serverDir = dirname(fileURLToPath(import.meta.url));
const rootDir = join(serverDir, "..");
const srcDir = join(serverDir, "src");
const sdkDir = join(rootDir, "client-sdk");
export const distDir = join(serverDir, "dist");
export const mainFile = join(distDir, "main.js");
/** Written by a failed `--if-stale` build (and removed by the next good one); the bin prints it. */
export const buildErrorFile = join(distDir, "build-error.txt");

/**
 * Left to Node's resolver at run time: packages with native code (loaded through
 * node-gyp-build or by ABI-named file, relative to their own directory). The pure-JS
 * dependencies are bundled: one file to load starts the node ~100 ms sooner than
 * resolving and reading ~300 module files.
 */
const EXTERNAL = ["uWebSockets.js", "@node-rs/argon2", "@node-rs/crc32", "cbor-extract", "bufferutil", "utf-8-validate"];

/** Entries under `dir` (recursive), relative paths with `/`. */
function entriesUnder(dir, keep) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter(keep)
    .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)).split(sep).join("/"));
}
const filesUnder = (dir) => entriesUnder(dir, (e) => e.isFile());

const isSource = (file) => file.endsWith(".ts") && !file.endsWith(".test.ts");
/** Non-TypeScript files a module loads beside itself at run time (Lua scripts, console page). */
const isAsset = (file) => !file.endsWith(".ts") && !file.endsWith(".md");

/** Newest mtime of every input of the build; `--if-stale` rebuilds when it is after dist/main.js. */
function newestInput() {
  let newest = 0;
  const consider = (path) => (newest = Math.max(newest, statSync(path).mtimeMs));
  for (const [dir, pick] of [[srcDir, (f) => isSource(f) || isAsset(f)], [join(sdkDir, "src"), isSource]]) {
    for (const file of filesUnder(dir)) if (pick(file)) consider(join(dir, file));
    // A directory's mtime changes when a file in it is added, renamed or deleted.
    consider(dir);
    for (const sub of entriesUnder(dir, (e) => e.isDirectory())) consider(join(dir, sub));
  }
  for (const file of [join(serverDir, "build.mjs"), join(sdkDir, "build.mjs"), join(serverDir, "package.json"), join(sdkDir, "package.json")]) consider(file);
  return newest;
}

export function isStale() {
  try {
    return statSync(mainFile).mtimeMs < newestInput();
  } catch {
    return true;
  }
}

/** Writes `contents` to `path` through a temporary file and a rename (atomic on one filesystem). */
function writeAtomic(path, contents) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

/** esbuild plugin: `import.meta.url` of a bundled server module = its URL in the dist/src mirror. */
const importMetaUrlPlugin = {
  name: "import-meta-url",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (!args.path.startsWith(srcDir + sep) || !text.includes("import.meta.url")) return undefined;
      const mirrored = `./src/${relative(srcDir, args.path).split(sep).join("/")}`;
      return { contents: text.replaceAll("import.meta.url", `new URL(${JSON.stringify(mirrored)}, import.meta.url).href`), loader: "ts" };
    });
  },
};

/** esbuild plugin: the console's development bundler (esbuild in-process) is not part of the compiled node. */
const noDevBundlePlugin = {
  name: "no-dev-bundle",
  setup(build) {
    build.onResolve({ filter: /console-dev-bundle\.ts$/ }, () => ({ path: "console-dev-bundle", namespace: "stub" }));
    build.onLoad({ filter: /.*/, namespace: "stub" }, () => ({
      contents: `export async function buildBrowserBundle() { throw new Error("the compiled node serves dist/src/gateway/http/console/tributary.min.js; it is missing: run npm run build"); }`,
      loader: "js",
    }));
  },
};

/**
 * esbuild plugin: the native packages (CommonJS) are loaded with require() rather than an
 * ESM import, which would first scan each one's source for its export names
 * (cjs-module-lexer) and wrap it: ~50 ms less CPU at start-up.
 */
const nativeRequirePlugin = {
  name: "native-require",
  setup(build) {
    build.onResolve({ filter: /^(uWebSockets\.js|@node-rs\/(argon2|crc32))$/ }, (args) =>
      args.namespace === "native-cjs" ? { path: args.path, external: true } : { path: args.path, namespace: "native-cjs" },
    );
    build.onLoad({ filter: /.*/, namespace: "native-cjs" }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: "js" }));
  },
};

/**
 * esbuild plugin: `debug` (the tracing switch of mqtt-packet and ioredis) costs nothing
 * unless DEBUG is set at start. Its disabled loggers still collect their arguments into an
 * array and read an `enabled` getter on every call; mqtt-packet calls them several times
 * per packet: about 8% of the node's CPU in the MQTT QoS 1 bench. With DEBUG set (e.g.
 * `DEBUG=ioredis:*`), the real package is used as before.
 */
const quietDebugPlugin = {
  name: "quiet-debug",
  setup(build) {
    build.onResolve({ filter: /^debug$/ }, () => ({ path: "quiet-debug", namespace: "quiet-debug" }));
    build.onLoad({ filter: /.*/, namespace: "quiet-debug" }, () => ({
      resolveDir: rootDir,
      loader: "js",
      contents: `
        function off() {}
        off.enabled = false;
        off.namespace = "";
        off.extend = () => off;
        off.destroy = () => true;
        let real = null;
        module.exports = function createDebug(namespace) {
          if (!process.env.DEBUG) return off;
          real ??= require("debug/src/index.js");
          return real(namespace);
        };
        module.exports.default = module.exports;
      `,
    }));
  },
};

export async function build() {
  const started = performance.now();
  const result = await esbuild.build({
    absWorkingDir: rootDir,
    entryPoints: [join(srcDir, "cli", "main.ts")],
    bundle: true,
    write: false,
    // `tributary start` does not compile what only other commands use: modules reached only
    // through a dynamic import (the connect runtime, yaml, pg) go to dist/chunk-*.js, beside main.js.
    outdir: distDir,
    entryNames: "main",
    chunkNames: "chunk-[hash]",
    splitting: true,
    platform: "node",
    format: "esm",
    target: ["node20"],
    // Bundle the SDK protocol from its sources, as the type-check and tests see it.
    conditions: ["tributary-source"],
    external: EXTERNAL,
    // Bundled CommonJS dependencies call require() for Node built-ins, and read __dirname.
    banner: {
      js: [
        'import { createRequire as __tributaryCreateRequire } from "node:module";',
        'import { fileURLToPath as __tributaryFileURLToPath } from "node:url";',
        "const require = __tributaryCreateRequire(import.meta.url);",
        "const __filename = __tributaryFileURLToPath(import.meta.url);",
        'const __dirname = __tributaryFileURLToPath(new URL(".", import.meta.url));',
      ].join("\n"),
    },
    plugins: [nativeRequirePlugin, importMetaUrlPlugin, noDevBundlePlugin, quietDebugPlugin],
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning",
  });
  const forbidden = Object.keys(result.metafile.inputs).filter((input) => /node_modules\/(tsx|esbuild)\//.test(input));
  if (forbidden.length > 0) throw new Error(`the compiled node must not contain ${forbidden.join(", ")}`);
  const browser = await esbuild.build({ ...browserBundleOptions("iife"), write: false, outfile: join(sdkDir, "dist", "tributary.min.js"), logLevel: "warning" });

  for (const file of filesUnder(srcDir)) {
    if (!isAsset(file)) continue;
    const tmp = join(distDir, "src", `${file}.${process.pid}.tmp`);
    mkdirSync(dirname(tmp), { recursive: true });
    copyFileSync(join(srcDir, file), tmp);
    renameSync(tmp, join(distDir, "src", file));
  }
  writeAtomic(join(distDir, "src", "gateway", "http", "console", "tributary.min.js"), browser.outputFiles[0].contents);
  // main.js last: its mtime marks a complete build for --if-stale.
  for (const out of [...result.outputFiles].sort((a, b) => Number(a.path === mainFile) - Number(b.path === mainFile))) writeAtomic(out.path, out.contents);
  // Chunks of earlier builds (content-hashed names) that this build no longer references.
  const written = new Set(result.outputFiles.map((out) => out.path));
  for (const name of readdirSync(distDir)) {
    if (/^chunk-.*\.js(\.map)?$/.test(name) && !written.has(join(distDir, name))) rmSync(join(distDir, name), { force: true });
  }
  return { ms: Math.round(performance.now() - started), bytes: statSync(mainFile).size };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const ifStale = process.argv.includes("--if-stale");
  if (ifStale && !isStale()) process.exit(0);
  try {
    const { ms, bytes } = await build();
    rmSync(buildErrorFile, { force: true });
    console.log(`server/dist/main.js: ${(bytes / 1024).toFixed(0)} KB, built in ${ms} ms`);
  } catch (err) {
    if (!ifStale) throw err;
    // A source that does not build (someone's edit in progress): no dist/main.js, so the bin
    // says why instead of running the previous build; the caller decides what else to do.
    rmSync(mainFile, { force: true });
    writeAtomic(buildErrorFile, `${err instanceof Error ? err.message : String(err)}\n`);
    process.stderr.write(`server/build.mjs: the node does not build (${buildErrorFile}):\n${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
