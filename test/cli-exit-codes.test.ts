/**
 * One exit-code table for the `tributary` command, applied everywhere: every server error
 * code has its row, docs/cli.md lists each under the code the CLI uses, and commander's own
 * usage errors come out in the documented `tributary: <message> [<CODE>]` form.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES, type ErrorCode } from "@tributary/client/codes";
import { EXIT_BY_CODE, formatUsageError } from "../server/src/cli/exit-codes.ts";
import { connectClient, endClient, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";

const BIN = fileURLToPath(new URL("../server/bin/tributary.mjs", import.meta.url));
const DOCS = fileURLToPath(new URL("../docs/cli.md", import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TRIBUTARY_")));
    execFile(process.execPath, [BIN, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("the exit-code table", () => {
  it("places every error code, and docs/cli.md lists each in the row of its exit code", () => {
    const codes = Object.keys(ERROR_CODES) as ErrorCode[];
    expect(Object.keys(EXIT_BY_CODE).sort()).toEqual([...codes].sort());
    const docs = readFileSync(DOCS, "utf8");
    const section = docs.slice(docs.indexOf("## Exit codes"), docs.indexOf("\n## ", docs.indexOf("## Exit codes") + 1));
    const documented = new Map<string, number>();
    for (const line of section.split("\n")) {
      const m = /^\| (\d) \|[^|]*\|([^|]*)\|/.exec(line);
      if (!m) continue;
      for (const code of m[2]!.matchAll(/`([A-Z_]+)`/g)) {
        expect(documented.has(code[1]!), `${code[1]} listed twice`).toBe(false);
        documented.set(code[1]!, Number(m[1]));
      }
    }
    expect(Object.fromEntries(documented)).toEqual(EXIT_BY_CODE);
  });

  it("formats commander's messages like every other error", () => {
    expect(formatUsageError("error: unknown option '--bogus'\n")).toBe("tributary: unknown option '--bogus' [BAD_REQUEST]\n");
  });
});

describe("the CLI against a node", () => {
  let node: MqttTestNode;
  let url: string;
  beforeAll(async () => {
    node = await startMqttTestNode();
    url = `http://127.0.0.1:${node.httpPort}`;
    // an MQTT client with a persistent session makes the internal topics and an internal group exist
    const c = await connectClient(node.tcpUrl, { clientId: "cli-codes", clean: false });
    await c.subscribeAsync("cli-codes/#", { qos: 1 });
    await endClient(c);
  });
  afterAll(async () => {
    await node?.close();
  });

  it("commander's usage errors: exit 2 in the documented form", async () => {
    for (const args of [["topics", "list", "--bogus"], ["nope"], ["topics", "create"], ["consume", "t", "--from", "xyz"]]) {
      const r = await run(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(/^tributary: .+ \[BAD_REQUEST\]\n/);
      expect(r.stderr).not.toMatch(/^error:/m);
    }
  });

  it("not found exits 3 (groups describe of a missing group included), conflicts exit 4", async () => {
    const missing = await run(["groups", "describe", "no-such-group", "--url", url]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^tributary: .+ \[UNKNOWN_GROUP\]\n$/);
    expect((await run(["topics", "describe", "no-such-topic", "--url", url])).code).toBe(3);
    expect((await run(["topics", "create", "dup", "--url", url])).code).toBe(0);
    const dup = await run(["topics", "create", "dup", "--url", url]);
    expect(dup.code).toBe(4);
    expect(dup.stderr).toMatch(/\[TOPIC_EXISTS\]/);
  });

  it("topics list hides internal topics unless --internal", async () => {
    const plain = (await run(["topics", "list", "--url", url])).stdout.split("\n");
    expect(plain).toContain("dup");
    expect(plain.filter((t) => t.startsWith("__"))).toEqual([]);
    const all = (await run(["topics", "list", "--internal", "--url", url])).stdout.split("\n");
    expect(all).toEqual(expect.arrayContaining(["__mqtt.sessions", "__mqtt.retained", "dup"]));
  });
});
