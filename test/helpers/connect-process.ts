/**
 * `tributary connect` as a child process (the compiled bin), for tests that kill it: writes
 * the YAML, resolves once the process printed its listening line, with its API URL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { BIN } from "./node-process.ts";
import { within } from "./wait.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

export interface ConnectChild {
  child: ChildProcess;
  apiUrl: string;
  stderr(): string;
  exited: Promise<number | null>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
}

export async function spawnConnect(configPath: string, yaml: string, nodeUrl: string, extraArgs: string[] = []): Promise<ConnectChild> {
  writeFileSync(configPath, yaml);
  const child = spawn(process.execPath, [BIN, "connect", "--config", configPath, "--url", nodeUrl, "--listen", "127.0.0.1:0", "--session-timeout", "1000", ...extraArgs], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const apiUrl = await within(
    new Promise<string>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        stdout += d.toString();
        const m = /tributary connect listening (\S+)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`tributary connect exited with ${code} before listening:\n${stderr}`)));
    }),
    30_000,
    "the connect process's listening line",
  );
  return {
    child,
    apiUrl,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return within(exited, 30_000, "tributary connect to exit");
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await within(exited, 10_000, "tributary connect to die");
    },
  };
}

/** One call of a node's HTTP API (JSON in and out); throws with the status and body unless 2xx. */
export async function nodeApi(httpPort: number, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${httpPort}${path}`, { method, headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
