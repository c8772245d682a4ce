/**
 * The `tributary` command end to end: a real node started as a child process
 * (`node server/bin/tributary.mjs start --data-dir <tmp> --port 0 --mqtt-port 0`), and the
 * client commands run as child processes against it. Checks outputs and exit codes
 * (docs/cli.md), config errors, and a clean SIGTERM shutdown whose data survives restart.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { waitFor } from "./helpers/wait.ts";

const BIN = fileURLToPath(new URL("../server/bin/tributary.mjs", import.meta.url));
const LISTENING = /^tributary listening http=127\.0\.0\.1:(\d+) mqtt=(127\.0\.0\.1:\d+|off)$/;

const children = new Set<ChildProcess>();
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tributary-cli-"));
  dirs.push(dir);
  return dir;
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Env for children: no inherited TRIBUTARY_* settings. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("TRIBUTARY_")) env[k] = v;
  return { ...env, ...extra };
}

function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ["pipe", "pipe", "pipe"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

function collect(child: ChildProcess, input?: string, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`tributary did not exit within ${timeoutMs} ms; stdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

function run(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
  return collect(spawnCli(args, options.env), options.input);
}

interface ServerProcess {
  child: ChildProcess;
  port: number;
  url: string;
  line: string;
  stderr: () => string;
  /** Resolves with the exit of the process. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
}

/** Starts `tributary start`, waits for its listening line. */
async function startServer(dataDir: string, extraArgs: string[] = []): Promise<ServerProcess> {
  const child = spawnCli(["start", "--data-dir", dataDir, "--host", "127.0.0.1", "--port", "0", "--mqtt-port", "0", ...extraArgs]);
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout })),
  );
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within 20 s; stderr: ${stderr}`)), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      const newline = stdout.indexOf("\n");
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(stdout.slice(0, newline));
      }
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`tributary start exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
  const match = LISTENING.exec(line);
  if (!match) throw new Error(`unexpected listening line: ${JSON.stringify(line)}`);
  const port = Number(match[1]);
  return { child, port, url: `http://127.0.0.1:${port}`, line, stderr: () => stderr, exited };
}

/**
 * An HTTP proxy in front of the node that records every request it forwards, so a test
 * can see where a client is in its sequence of requests (e.g. that `consume` has resolved
 * `latest` and now polls from a numeric offset).
 */
async function startRecordingProxy(target: string): Promise<{ url: string; requests: URL[]; close(): Promise<void> }> {
  const requests: URL[] = [];
  const proxy = http.createServer((req, res) => {
    const to = new URL(req.url!, target);
    requests.push(to);
    const upstream = http.request(to, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => proxy.close(() => resolve())),
  };
}

let server: ServerProcess;
let url: string;

beforeAll(async () => {
  server = await startServer(tempDir());
  url = server.url;
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("tributary start", () => {
  it("prints exactly one listening line on stdout with the bound ports", async () => {
    expect(server.line).toMatch(LISTENING);
    expect(server.port).toBeGreaterThan(0);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
  });

  it("exits 2 with every config problem named (field, expectation, value, source) and prints nothing on stdout", async () => {
    const result = await run(["start", "--data-dir", tempDir(), "--port", "abc", "--fsync", "sometimes"], { env: { TRIBUTARY_MQTT_PORT: "x" } });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain('port: expected an integer 0..65535, got "abc" (from flag --port)');
    expect(result.stderr).toContain('mqtt.port: expected an integer 0..65535, got "x" (from env TRIBUTARY_MQTT_PORT)');
    expect(result.stderr).toContain("file.fsync: expected");
    expect(result.stderr).toContain("INVALID_CONFIG");
  });

  it("exits 2 on an unknown config-file key with a did-you-mean, and on an unknown flag", async () => {
    const file = join(tempDir(), "config.json");
    writeFileSync(file, JSON.stringify({ prot: 9000, limits: { maxRecordByte: 1 } }));
    const result = await run(["start", "--config", file, "--port", "0"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown key "prot" at the top level (did you mean "port"?)');
    expect(result.stderr).toContain('(did you mean "maxRecordBytes"?)');

    const flag = await run(["start", "--prot", "0"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("unknown option '--prot'");
    expect(flag.stderr).toContain("--port");
  });

  it("exits 1 when the port is already in use", async () => {
    const result = await run(["start", "--data-dir", tempDir(), "--host", "127.0.0.1", "--port", String(server.port), "--mqtt-port", "0"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${server.port}`);
    expect(result.stdout).toBe("");
  });

  it("shuts down cleanly on SIGTERM (exit 0), and the data survives a restart", async () => {
    const dataDir = tempDir();
    const first = await startServer(dataDir);
    const produced = await run(["produce", "durable", "--url", first.url], { input: "one\ntwo\nthree\n" });
    expect(produced.code).toBe(0);
    first.child.kill("SIGTERM");
    const exit = await first.exited;
    expect(exit.code).toBe(0);
    expect(exit.stdout.trim().split("\n")).toHaveLength(1); // only the listening line
    expect(first.stderr()).toContain('"event":"node.stopped"');

    const second = await startServer(dataDir);
    const consumed = await run(["consume", "durable", "--from", "earliest", "--no-follow", "--url", second.url]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout).toBe("one\ntwo\nthree\n");
    second.child.kill("SIGINT");
    expect((await second.exited).code).toBe(0);
  });
});

describe("tributary topics", () => {
  it("creates, lists, describes and deletes a topic, with the documented exit codes", async () => {
    const created = await run(["topics", "create", "orders", "--partitions", "3", "--retention", "12h", "--url", url]);
    expect(created.code).toBe(0);
    expect(created.stdout).toBe("created topic orders with 3 partitions, retention 12h\n");

    const again = await run(["topics", "create", "orders", "--url", url]);
    expect(again.code).toBe(4);
    expect(again.stderr).toContain("TOPIC_EXISTS");
    expect((await run(["topics", "create", "orders", "--if-not-exists", "--url", url])).code).toBe(0);

    const list = await run(["topics", "list", "--url", url]);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")).toContain("orders");

    const described = await run(["topics", "describe", "orders", "--json", "--url", url]);
    expect(described.code).toBe(0);
    const json = JSON.parse(described.stdout);
    expect(json).toMatchObject({ name: "orders", partitions: 3, retentionMs: 12 * 3_600_000 });
    expect(json.partitionInfo).toHaveLength(3);
    const table = await run(["topics", "describe", "orders", "--url", url]);
    expect(table.stdout).toMatch(/PARTITION\s+EARLIEST\s+END\s+RECORDS\s+EPOCH/);
    expect(table.stdout).toContain("retention           12h");

    const deleted = await run(["topics", "delete", "orders", "--url", url]);
    expect(deleted.code).toBe(0);
    const gone = await run(["topics", "describe", "orders", "--url", url]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain("UNKNOWN_TOPIC");
    expect((await run(["topics", "delete", "orders", "--url", url])).code).toBe(3);
    expect((await run(["topics", "delete", "orders", "--if-exists", "--url", url])).code).toBe(0);
  });

  it("rejects bad topic names and bad option values with exit 2 and a clear message", async () => {
    const name = await run(["topics", "create", "bad name", "--url", url]);
    expect(name.code).toBe(2);
    expect(name.stderr).toContain('invalid topic name "bad name"');
    expect(name.stderr).toContain("[a-zA-Z0-9._-]");

    const produce = await run(["produce", "bad/name", "--url", url], { input: "x\n" });
    expect(produce.code).toBe(2);
    expect(produce.stderr).toContain("INVALID_TOPIC");

    const retention = await run(["topics", "create", "r", "--retention", "soon", "--url", url]);
    expect(retention.code).toBe(2);
    expect(retention.stderr).toContain("expected a duration like 7d");

    const replicated = await run(["topics", "create", "r", "--replication-factor", "3", "--url", url]);
    expect(replicated.code).toBe(2);
    expect(replicated.stderr).toContain("POLICY_VIOLATION");
  });

  it("exits 1 when the server cannot be reached, 2 for a malformed --url, and honours TRIBUTARY_URL", async () => {
    const down = await run(["topics", "list", "--url", "http://127.0.0.1:1"]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("cannot reach the Tributary server at http://127.0.0.1:1");
    const malformed = await run(["topics", "list", "--url", "not a url"]);
    expect(malformed.code).toBe(2);
    const viaEnv = await run(["topics", "list"], { env: { TRIBUTARY_URL: url } });
    expect(viaEnv.code).toBe(0);
  });
});

describe("tributary produce / consume", () => {
  it("round-trips 2000 stdin lines in order through produce and consume", async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `line ${i} ✓`);
    expect((await run(["topics", "create", "lines", "--url", url])).code).toBe(0);
    const produced = await run(["produce", "lines", "--url", url, "--batch-size", "300"], { input: lines.join("\n") + "\n" });
    expect(produced.code).toBe(0);
    expect(produced.stdout).toBe("");
    expect(produced.stderr).toMatch(/^produced 2000 records to lines in .*per partition 0:2000\n$/);

    const consumed = await run(["consume", "lines", "--from", "earliest", "--max", "2000", "--url", url]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout).toBe(lines.join("\n") + "\n");
    expect(consumed.stderr).toContain("consumed 2000 records");
  });

  it("produces keyed lines and prints partition, offset, key and value with --print-offsets", async () => {
    expect((await run(["topics", "create", "keyed", "--partitions", "3", "--url", url])).code).toBe(0);
    const produced = await run(["produce", "keyed", "--keyed", "--acks", "all", "--url", url], { input: "user-42\tfirst\nuser-42\tsecond\n" });
    expect(produced.code).toBe(0);
    const consumed = await run(["consume", "keyed", "--from", "earliest", "--no-follow", "--print-offsets", "--url", url]);
    expect(consumed.code).toBe(0);
    // toPositive(murmur2("user-42")) % 3 = 1, as the Java client computes it
    expect(consumed.stdout).toBe("1\t0\tuser-42\tfirst\n1\t1\tuser-42\tsecond\n");

    const fixedKey = await run(["produce", "keyed", "--key", "user-42", "--url", url], { input: "third\n" });
    expect(fixedKey.code).toBe(0);
    const one = await run(["consume", "keyed", "--partition", "1", "--from", "2", "--max", "1", "--print-offsets", "--url", url]);
    expect(one.stdout).toBe("1\t2\tuser-42\tthird\n");
  });

  it("exits 2 on a --keyed line without a separator, after producing the lines before it", async () => {
    const result = await run(["produce", "sep", "--keyed", "--url", url], { input: "k\tv\nno separator here\n" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("line 2 has no key separator");
    const consumed = await run(["consume", "sep", "--from", "earliest", "--no-follow", "--print-offsets", "--url", url]);
    expect(consumed.stdout).toBe("0\t0\tk\tv\n");
  });

  it("produces lines as text/plain or --content-type, and consume prints by content type (JSON compacted, CBOR as JSON, text as is)", async () => {
    const produced = await run(["produce", "typed", "--content-type", "application/json", "--url", url], { input: '{ "temp": 21.5 }\n[1, 2]\n' });
    expect(produced.code).toBe(0);
    expect((await run(["produce", "typed", "--url", url], { input: "plain words\n" })).code).toBe(0);
    const { encode } = await import("cbor-x");
    const cbor = await fetch(`${url}/topics/typed/records`, { method: "POST", headers: { "content-type": "application/cbor" }, body: new Uint8Array(encode({ value: encode({ n: 1 }), contentType: "application/cbor" })) });
    expect(cbor.status).toBe(200);
    const bad = await fetch(`${url}/topics/typed/records`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ value: "{oops", contentType: "application/json" }) });
    expect(bad.status).toBe(200);
    const read = await (await fetch(`${url}/topics/typed/partitions/0/records`)).json();
    expect(read.records.map((r: { headers: Record<string, string> }) => r.headers["content-type"])).toEqual(["application/json", "application/json", "text/plain; charset=utf-8", "application/cbor", "application/json"]);
    const consumed = await run(["consume", "typed", "--from", "earliest", "--no-follow", "--url", url]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout).toBe('{"temp":21.5}\n[1,2]\nplain words\n{"n":1}\n{oops\n');
    expect(consumed.stderr).toContain("offset 4: value is not valid application/json");
    expect(consumed.stderr).toContain("consumed 5 records from typed (1 not valid for their content type, printed as stored)");

    const notJson = await run(["produce", "typed", "--content-type", "application/json", "--url", url], { input: "{}\nnot json\n" });
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain("line 2 is not JSON");
    expect((await run(["produce", "typed", "--content-type", "nonsense", "--url", url], { input: "x\n" })).code).toBe(2);
  });

  it("follows new records like tail -f until --max, starting from latest", async () => {
    expect((await run(["topics", "create", "live", "--url", url])).code).toBe(0);
    await run(["produce", "live", "--url", url], { input: "old\n" });
    const proxy = await startRecordingProxy(url);
    onTestFinished(() => proxy.close());
    const consumer = spawnCli(["consume", "live", "--max", "2", "--url", proxy.url]);
    const done = collect(consumer);
    // It is at the live edge once its read from `latest` was answered: it then polls from a numeric offset (the end).
    const reads = "/topics/live/partitions/0/records";
    await waitFor(() => proxy.requests.some((u) => u.pathname === reads && /^\d+$/.test(u.searchParams.get("offset") ?? "")), {
      timeoutMs: 20_000,
      what: "the consumer to poll from the end offset",
    });
    for (const value of ["new1", "new2"]) await run(["produce", "live", "--url", url], { input: `${value}\n` });
    const result = await done;
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    const [a, b] = lines.map((l) => Number(/^new(\d+)$/.exec(l)?.[1]));
    expect(b).toBe(a! + 1);
    expect(lines).toEqual(["new1", "new2"]); // never the old one, nothing skipped
  });

  it("stops following on SIGINT with exit 0", async () => {
    expect((await run(["topics", "create", "quiet", "--url", url])).code).toBe(0);
    expect((await run(["produce", "quiet", "--url", url], { input: "only-one\n" })).code).toBe(0);
    const consumer = spawnCli(["consume", "quiet", "--from", "earliest", "--url", url]);
    const done = collect(consumer);
    // Printing the record proves it is following (its SIGINT handler is installed), however slow the machine.
    await new Promise<void>((resolve) => {
      let out = "";
      consumer.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("only-one")) resolve();
      });
    });
    // it counts the record right after writing it: the count is 1 by the time the line arrives here
    consumer.kill("SIGINT");
    const result = await done;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("consumed 1 record from quiet");
  });

  it("exits 3 when consuming an unknown topic or partition, 2 for an offset out of range", async () => {
    const unknown = await run(["consume", "nothing-here", "--url", url]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain("UNKNOWN_TOPIC");
    expect((await run(["topics", "create", "small", "--url", url])).code).toBe(0);
    expect((await run(["consume", "small", "--partition", "4", "--url", url])).code).toBe(3);
    const range = await run(["consume", "small", "--from", "99", "--url", url]);
    expect(range.code).toBe(2);
    expect(range.stderr).toContain("OFFSET_OUT_OF_RANGE");
  });
});

describe("usage", () => {
  it("prints help for every command with exit 0 and exits 2 on an unknown command", async () => {
    for (const args of [["--help"], ["start", "--help"], ["topics", "create", "--help"], ["produce", "--help"], ["consume", "--help"]]) {
      const result = await run(args);
      expect(result.code, args.join(" ")).toBe(0);
      expect(result.stdout).toContain("Usage: tributary");
    }
    const unknown = await run(["bogus"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'bogus'");
  });
});
