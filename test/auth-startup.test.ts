/**
 * Start-up with the local-only rule (Mosquitto 2): with no authentication configured a
 * non-loopback --host is refused (exit 2, a message saying what to configure), accepted
 * with --allow-anonymous (a warning at start); loopback keeps starting as before.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, spawnFileNode } from "./helpers/node-process.ts";
import { within } from "./helpers/wait.ts";

const dir = mkdtempSync(join(tmpdir(), "tributary-auth-startup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("TRIBUTARY_")) env[k] = v;
  return env;
}

describe("start-up exposure rule", () => {
  it("refuses-a-non-loopback-host-without-auth-with-exit-2-and-what-to-configure", async () => {
    const child = spawn(process.execPath, [BIN, "start", "--host", "0.0.0.0", "--port", "0", "--mqtt-port", "0", "--data-dir", join(dir, "refused")], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const code = await within(new Promise<number | null>((resolve) => child.on("close", resolve)), 20_000, "the refused node to exit");
    expect(code).toBe(2);
    expect(stdout).not.toContain("tributary listening");
    expect(stderr).toContain("refusing to listen on 0.0.0.0 without authentication");
    expect(stderr).toContain("auth.jwt.secretFile");
    expect(stderr).toContain("--allow-anonymous");
  });

  it("starts-on-a-non-loopback-host-with-allow-anonymous-and-warns", async () => {
    const node = await spawnFileNode({ args: ["--host", "0.0.0.0", "--allow-anonymous"] });
    try {
      expect(node.stderr()).toContain("auth.anonymous_exposed");
      const res = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`);
      expect(res.status).toBe(200);
    } finally {
      await node.stop();
    }
  });

  it("starts-on-loopback-without-auth-as-before", async () => {
    const node = await spawnFileNode();
    try {
      expect(node.stderr()).not.toContain("auth.anonymous_exposed");
      expect((await fetch(`http://127.0.0.1:${node.httpPort}/topics`)).status).toBe(200);
    } finally {
      await node.stop();
    }
  });
});
