/**
 * A real Prometheus (Debian's `prometheus` package, installed by .ci/run) for the
 * monitoring test and the dashboard renderer: its own process on a free loopback port,
 * a temp config and TSDB dir, 1 s scrape and rule evaluation, job "tributary" scraping the
 * given targets. Fails loudly when the binary is missing. Only the PID started here is
 * ever signalled.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./redis-harness.ts";
import { waitFor } from "./wait.ts";

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? "prometheus";
export const PROMTOOL_BIN = process.env.PROMTOOL_BIN ?? "promtool";

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromSeries {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}

export interface PrometheusServer {
  readonly url: string;
  /** Instant query; throws with Prometheus's error for a bad expression. */
  query(expr: string): Promise<PromSample[]>;
  /** Range query (start/end in seconds since the epoch). */
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<PromSeries[]>;
  /** GET /api/v1/<path> `data`. */
  api<T>(path: string): Promise<T>;
  /** Resolves once every target of job "tributary" was scraped and is up. */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Throws with the install hint when `bin` is not on PATH. */
export function requireBinary(bin: string): void {
  const found = spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" });
  if (found.status !== 0) throw new Error(`${bin} is not installed: apt-get install -y prometheus (.ci/run installs it)`);
}

export async function startPrometheus(options: { targets: string[]; ruleFiles?: string[]; labels?: Record<string, Record<string, string>> }): Promise<PrometheusServer> {
  requireBinary(PROMETHEUS_BIN);
  const dir = mkdtempSync(join(tmpdir(), "tributary-prometheus-"));
  const port = await freePort();
  const config = {
    global: { scrape_interval: "1s", evaluation_interval: "1s", scrape_timeout: "900ms" },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: [
      {
        job_name: "tributary",
        metrics_path: "/metrics",
        static_configs: options.targets.map((target) => ({ targets: [target], labels: options.labels?.[target] ?? {} })),
      },
    ],
  };
  // JSON is YAML: no YAML library needed.
  writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2));
  const child: ChildProcess = spawn(
    PROMETHEUS_BIN,
    [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn", "--storage.tsdb.retention.time=1d"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}/api/v1/${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${stderr}`);
        return fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
      },
      { timeoutMs: 15_000, what: `prometheus ready on ${url}`, intervalMs: 50 },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url,
    api,
    async query(expr) {
      return (await api<{ resultType: string; result: PromSample[] }>(`query?query=${encodeURIComponent(expr)}`)).result;
    },
    async queryRange(expr, start, end, step) {
      return (await api<{ result: PromSeries[] }>(`query_range?query=${encodeURIComponent(expr)}&start=${start}&end=${end}&step=${step}`)).result;
    },
    async waitForTargetsUp(timeoutMs = 15_000) {
      await waitFor(
        async () => {
          const { activeTargets } = await api<{ activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> }>("targets");
          return activeTargets.length === options.targets.length && activeTargets.every((t) => t.health === "up");
        },
        { timeoutMs, what: "every target up in prometheus", intervalMs: 100 },
      );
    },
    stop,
  };
}

/** Runs `promtool <args>` with `input` on stdin; returns its exit status and output. */
export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  requireBinary(PROMTOOL_BIN);
  const r = spawnSync(PROMTOOL_BIN, args, { input, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
