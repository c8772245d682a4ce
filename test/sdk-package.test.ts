/**
 * @tributary/client installs as documented: `npm pack` in client-sdk gives a tarball with
 * dist/ (ESM, CJS, types, browser bundles) and no sources or tests; installed into a fresh
 * project outside the repository, the README's Node snippet runs against a real node
 * (the compiled `tributary start`), and `require()` works too. Inside the repository the
 * workspace SDK imports with plain `node` (no custom conditions), and the browser-bundle
 * size the SDK README states is the build's.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnFileNode, type NodeChild } from "./helpers/node-process.ts";
import { within } from "./helpers/wait.ts";

const run = promisify(execFile);
const ROOT = new URL("../", import.meta.url).pathname;
const SDK = join(ROOT, "client-sdk");

/** Env for npm children: nothing from an enclosing `npm test` (npm_config_local_prefix would point npm at the repository). */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|INIT_CWD$|TRIBUTARY_)/i.test(k)) env[k] = v;
  return env;
}

interface PackResult {
  filename: string;
  files: Array<{ path: string }>;
}

let work: string;
let packed: PackResult;
const children = new Set<ChildProcess>();
let node: NodeChild | undefined;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "tributary-sdk-pack-"));
  // `npm pack` runs the SDK's prepack script (the build), as `npm publish` would.
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: SDK, env: npmEnv(), maxBuffer: 16 << 20 });
  // The build's own output (prepack) may come first: the JSON array starts at a line's start.
  packed = (JSON.parse(stdout.slice(stdout.search(/^\[/m))) as PackResult[])[0]!;
}, 120_000);

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await node?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the packed SDK", () => {
  it("ships dist (ESM, CJS, types, browser bundles) and no sources or tests", () => {
    const files = packed.files.map((f) => f.path);
    for (const file of ["package.json", "README.md", "dist/index.js", "dist/index.cjs", "dist/index.d.ts", "dist/protocol.js", "dist/protocol.cjs", "dist/protocol/index.d.ts", "dist/codes.js", "dist/codes.d.ts", "dist/tributary.min.js", "dist/tributary.esm.min.js"]) {
      expect(files, file).toContain(file);
    }
    expect(files.filter((f) => f.startsWith("src/") || /\.test\.|(^|\/)test\//.test(f))).toEqual([]);
    // Declarations say "./x.js", not the sources' "./x.ts" (a consumer's tsc would not find them).
    const dts = readFileSync(join(SDK, "dist", "index.d.ts"), "utf8");
    expect(dts).not.toMatch(/from\s+["'][^"']+\.ts["']/);
  });

  it("installs outside the repository, and the README's Node snippet publishes and receives through a node", async () => {
    const project = join(work, "app");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "sdk-user", version: "1.0.0", private: true, type: "module" }));
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", join(work, packed.filename)], { cwd: project, env: npmEnv(), maxBuffer: 16 << 20 });

    node = await spawnFileNode();
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const snippet = /From a browser or Node\b[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(snippet, "README.md: the ```js block after 'From a browser or Node'").toBeDefined();
    expect(snippet).toContain('"ws://127.0.0.1:8080"');
    const script = `${snippet!.replace("ws://127.0.0.1:8080", `ws://127.0.0.1:${node.httpPort}`)}console.log("published", partition, offset);\n`;
    writeFileSync(join(project, "snippet.mjs"), script);

    const child = spawn(process.execPath, ["snippet.mjs"], { cwd: project, env: npmEnv(), stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    // The snippet keeps its subscription open: done once it printed its ack and the record it received.
    await within(
      new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (d: Buffer) => {
          stdout += d.toString();
          if (/^published \d+ \d+$/m.test(stdout) && /^\d+ \d+ \{ temp: 21\.5 \}$/m.test(stdout)) resolve();
        });
        child.once("exit", (code) => reject(new Error(`snippet exited with ${code}\nstdout: ${stdout}\nstderr: ${stderr}`)));
      }),
      30_000,
      "the README snippet's ack and message",
    );
    child.kill("SIGKILL");
    const [, partition, offset] = /^published (\d+) (\d+)$/m.exec(stdout)!;
    expect(stdout).toContain(`${partition} ${offset} { temp: 21.5 }`);

    const cjs = await run(process.execPath, ["-e", 'const c = require("@tributary/client"); const p = require("@tributary/client/protocol"); console.log(typeof c.connect, typeof p)'], { cwd: project, env: npmEnv() });
    expect(cjs.stdout.trim()).toBe("function object");
  }, 180_000);
});

describe("the SDK in the repository", () => {
  it("imports with plain node, without a custom --conditions flag", async () => {
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", 'const m = await import("@tributary/client"); const c = await import("@tributary/client/codes"); console.log(typeof m.connect, Object.keys(c).length > 0)'], {
      cwd: ROOT,
      env: npmEnv(),
    });
    expect(stdout.trim()).toBe("function true");
  });

  it("states the browser bundle's gzip size as the build makes it (client-sdk/README.md, rounded to the KB)", () => {
    const kb = gzipSync(readFileSync(join(SDK, "dist", "tributary.min.js")), { level: 9 }).length / 1024;
    const readme = readFileSync(join(SDK, "README.md"), "utf8");
    const stated = [...readme.matchAll(/(\d+(?:\.\d+)?) KB gzip, global `Tributary`|currently (\d+(?:\.\d+)?) KB[;),]/g)].map((m) => Number(m[1] ?? m[2]));
    expect(stated.length, "client-sdk/README.md states the browser bundle size twice").toBe(2);
    for (const figure of stated) expect(figure, `client-sdk/README.md says ${figure} KB; the build gives ${kb.toFixed(1)} KB gzip`).toBe(Math.round(kb));
  });
});
