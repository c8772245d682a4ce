/**
 * The node users start is compiled JavaScript: `tributary` (server/bin/tributary.mjs) and
 * `npm start` run server/dist/main.js, which loads no TypeScript loader and no esbuild,
 * and serves the SDK browser bundle built ahead of time. A Node without uWebSockets.js's
 * native binary is refused with a message and exit code 1 instead of the slow fallback.
 */
import { execFile, spawn } from "node:child_process";
import { readFileSync, readdirSync, rmSync, mkdtempSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { BIN, spawnFileNode, type NodeChild } from "./helpers/node-process.ts";
import { waitFor, within } from "./helpers/wait.ts";
import { SUPPORTED_NODE_MAJORS, runtimeProblem } from "../server/bin/runtime-check.mjs";

const run = promisify(execFile);
const ROOT = new URL("../", import.meta.url).pathname;
const DIST = join(ROOT, "server", "dist");

const nodes: NodeChild[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Pids of every descendant of `pid` (Linux /proc). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out; // the process is gone
  }
  for (const task of tasks) {
    let children = "";
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8");
    } catch {
      continue; // the thread ended meanwhile
    }
    for (const child of children.split(" ").filter(Boolean).map(Number)) out.push(child, ...descendants(child));
  }
  return out;
}

/** Whether `pid` is alive (a zombie has exited: it holds no files). */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0] !== "Z";
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** Runs the bin under a preload that makes Node report another runtime; resolves with code and stderr. */
async function binAs(preload: string, args: string[] = ["--help"]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, ["--import", `data:text/javascript,${encodeURIComponent(preload)}`, BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  const code = await within(new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c))), 20_000, "the bin to exit");
  return { code, stderr, stdout };
}

describe("the compiled node", () => {
  it("loads only Node built-ins and native runtime dependencies: no tsx, no esbuild", () => {
    // main.js and the chunks it loads on demand (server/build.mjs splits off what only some commands use)
    const files = readdirSync(DIST).filter((f) => f === "main.js" || /^chunk-.*\.js$/.test(f));
    const specifiers = new Set<string>();
    for (const file of files) {
      const code = readFileSync(join(DIST, file), "utf8");
      for (const m of code.matchAll(/(?:(?<![\w"'])from\s*|\bimport\s*\(\s*|require\s*\(\s*)"([^"]+)"/g)) specifiers.add(m[1]!);
    }
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const packages = [...specifiers].filter((s) => !builtins.has(s) && !/^\.\/chunk-[\w-]+\.js$/.test(s));
    // supports-color: an optional require of `debug` (inside ioredis), in a try block.
    expect(packages.sort()).toEqual(["@node-rs/argon2", "@node-rs/crc32", "cbor-extract", "supports-color", "uWebSockets.js"]);
    for (const bin of ["tributary.mjs", "runtime-check.mjs"]) {
      const text = readFileSync(join(ROOT, "server", "bin", bin), "utf8");
      expect(text, bin).not.toMatch(/tsx|esbuild|\.ts["']/);
    }
  });

  it("starts from the compiled bin and serves the console bundle built ahead of time, without running esbuild", async () => {
    const node = await spawnFileNode();
    nodes.push(node);
    expect(cmdline(node.pid)).toContain("server/bin/tributary.mjs");
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/tributary.min.js`);
    expect(res.status).toBe(200);
    const served = Buffer.from(await res.arrayBuffer());
    expect(served.equals(readFileSync(join(DIST, "src", "gateway", "http", "console", "tributary.min.js")))).toBe(true);
    expect(served.toString("utf8", 0, 200)).toMatch(/Tributary/);
    const page = await fetch(`http://127.0.0.1:${node.httpPort}/`);
    expect(await page.text()).toContain("<script");
    // esbuild works through a child process (its Go binary); the compiled node starts none.
    expect(descendants(node.pid).map(cmdline)).toEqual([]);
  });

  it("npm start runs the compiled bin", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tributary-npm-start-"));
    dirs.push(dataDir);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|TRIBUTARY_)/i.test(k)) env[k] = v;
    const child = spawn("npm", ["start", "--", "--data-dir", dataDir, "--port", "0", "--mqtt-port", "0", "--log-level", "warn"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      let stdout = "";
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      await within(
        new Promise<void>((resolve, reject) => {
          child.stdout!.on("data", (d: Buffer) => {
            stdout += d.toString();
            if (/tributary listening http=/.test(stdout)) resolve();
          });
          child.once("exit", (code) => reject(new Error(`npm start exited with ${code}: ${stdout}\n${stderr}`)));
        }),
        30_000,
        "npm start's listening line",
      );
      const commands = descendants(child.pid!).map(cmdline);
      expect(commands.some((c) => c.includes("server/bin/tributary.mjs start"))).toBe(true);
      expect(commands.filter((c) => /tsx|esbuild|tributary-dev/.test(c))).toEqual([]);
    } finally {
      // npm exits at once on SIGTERM while the node it started is still shutting down (writing
      // its data dir): wait for every process of the group, or the temp dir cannot be removed.
      const group = [child.pid!, ...descendants(child.pid!)];
      process.kill(-child.pid!, "SIGTERM");
      await exited;
      await waitFor(() => group.every((pid) => !running(pid)), { timeoutMs: 15_000, what: "npm start's processes to exit" });
    }
  });
});

describe("supported Node versions", () => {
  it("package.json engines and the start-up check name the same Node majors", () => {
    expect(SUPPORTED_NODE_MAJORS).toEqual([20]);
    for (const pkg of ["package.json", "server/package.json"]) {
      expect((JSON.parse(readFileSync(join(ROOT, pkg), "utf8")) as { engines: { node: string } }).engines.node, pkg).toBe(">=20 <21");
    }
    expect(runtimeProblem()).toBeUndefined(); // the Node running the tests is a supported one
  });

  it("refuses a Node version without the native uWS binary, with a message and exit code 1", async () => {
    const { code, stderr, stdout } = await binAs('Object.defineProperty(process.versions, "node", { value: "22.11.0" }); Object.defineProperty(process.versions, "modules", { value: "127" });');
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toMatch(/^tributary: Node 22\.11\.0 is not supported: Tributary runs on Node 20\.x/);
  });

  it("refuses a platform with no uWS binary for this Node, unless UWS_USE_FALLBACK asks for the slow path", async () => {
    const { code, stderr } = await binAs('Object.defineProperty(process, "platform", { value: "freebsd" });');
    expect(code).toBe(1);
    expect(stderr).toMatch(/uWebSockets\.js has no native binary for Node [\d.]+ on freebsd-\w+ \(uws_freebsd_\w+_\d+\.node/);
    expect(runtimeProblem({ platform: "freebsd", env: { UWS_USE_FALLBACK: "1" } })).toBeUndefined();
    expect(runtimeProblem({ version: "18.20.0", modules: "108", binaryExists: () => true })).toMatch(/Node 18\.20\.0 is not supported/);
  });

  it("prints help on a supported Node", async () => {
    const { code, stdout } = await binAs("");
    expect(code).toBe(0);
    expect(stdout).toContain("Usage: tributary");
  });
});
