/**
 * @tributary/streams packs like the SDK: `npm pack` (its prepack builds) gives dist/ (ESM,
 * CJS, declarations) and no sources or tests, and the built package loads with plain
 * `node` (no source condition), both as ESM and through require().
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = new URL("../", import.meta.url).pathname;

/** Env for npm children: nothing from an enclosing `npm test`. */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|INIT_CWD$|TRIBUTARY_|NODE_OPTIONS$)/i.test(k)) env[k] = v;
  return env;
}

let work: string;
let files: string[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "tributary-streams-pack-"));
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: join(ROOT, "streams"), env: npmEnv(), maxBuffer: 16 << 20 });
  files = (JSON.parse(stdout.slice(stdout.search(/^\[/m))) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the packed streams library", () => {
  it("ships dist (ESM, CJS, declarations) and no sources or tests", () => {
    for (const file of ["package.json", "dist/index.js", "dist/index.cjs", "dist/index.d.ts", "dist/streams-app.d.ts"]) expect(files, file).toContain(file);
    expect(files.filter((f) => f.startsWith("src/") || /\.test\./.test(f))).toEqual([]);
  });

  it("loads with plain node as ESM and with require()", async () => {
    const esm = await run(process.execPath, ["--input-type=module", "-e", 'const m = await import("@tributary/streams"); console.log(typeof m.StreamsBuilder, typeof m.TributaryStreams, m.tumbling(60000, { grace: 1 }).graceMs)'], { cwd: ROOT, env: npmEnv() });
    expect(esm.stdout.trim()).toBe("function function 1");
    const cjs = await run(process.execPath, ["-e", 'const m = require("@tributary/streams"); console.log(typeof m.StreamsBuilder, require.resolve("@tributary/streams").endsWith("dist/index.cjs"))'], { cwd: ROOT, env: npmEnv() });
    expect(cjs.stdout.trim()).toBe("function true");
  });
});
