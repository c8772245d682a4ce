/**
 * `npm run bench -- dashboards [--rounds 45] [--out docs/img]`
 *
 * The README's monitoring pictures, fed by a real run: a file-engine node with MQTT and two
 * nodes on one Redis, scraped every second by a real Prometheus (Debian's package), under
 * the monitoring test's workload (test/helpers/monitoring-workload.ts) paced over
 * `--rounds` seconds, plus a consumer group ("analytics") slower than the producers, so its
 * lag grows. Then every panel of every dashboard in grafana/dashboards is fetched with
 * Prometheus's `query_range` (step 1 s, `$instance`/`$topic` = All, `$__rate_interval` =
 * 15 s) and drawn with Chart.js in headless Chromium, laid out on Grafana's 24-column grid,
 * one PNG per dashboard (Grafana itself is not installable here).
 */
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { connect } from "@tributary/client";
import { startRedisNode } from "../helpers/cluster-nodes.ts";
import { WORKLOAD_TOPIC, runWorkload } from "../helpers/monitoring-workload.ts";
import { startMqttTestNode } from "../helpers/mqtt-node.ts";
import { startPrometheus, type PromSeries } from "../helpers/prometheus.ts";
import { startRedis } from "../helpers/redis-harness.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DASHBOARDS = join(ROOT, "grafana", "dashboards");
const CHART_JS = join(dirname(createRequire(import.meta.url).resolve("chart.js")), "chart.umd.js");
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

interface Panel {
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  fieldConfig: { defaults: { unit: string } };
  targets: Array<{ expr: string; legendFormat: string }>;
}

interface RenderedPanel {
  title: string;
  type: string;
  unit: string;
  gridPos: Panel["gridPos"];
  series: Array<{ label: string; points: Array<[number, number | null]> }>;
}

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
  };
  const rounds = Number(opt("rounds", "45"));
  const out = resolve(ROOT, opt("out", "docs/img"));
  mkdirSync(out, { recursive: true });

  const fileNode = await startMqttTestNode();
  const redis = await startRedis();
  const redisNodes = [await startRedisNode(redis.url), await startRedisNode(redis.url)];
  const prom = await startPrometheus({ targets: [`127.0.0.1:${fileNode.httpPort}`, ...redisNodes.map((n) => `127.0.0.1:${n.httpPort}`)], ruleFiles: [join(ROOT, "grafana", "alerts.yml")] });
  const slow = connect(`ws://127.0.0.1:${fileNode.httpPort}`);
  try {
    await prom.waitForTargetsUp();
    const start = Math.floor(Date.now() / 1000);
    // A consumer group slower than the producers: 5 records/s, auto-committed every second.
    slow.subscribe(WORKLOAD_TOPIC, () => new Promise<void>((resolve) => setTimeout(resolve, 200)), { group: "analytics", reset: "earliest", autoCommitIntervalMs: 1000 });
    process.stdout.write(`workload: ${rounds} rounds of 1 s on a file node (WS, MQTT, HTTP) and two Redis nodes\n`);
    const workload = await runWorkload(fileNode, redisNodes, { ws: 40, mqtt: 20, http: 10, rounds, pauseMs: 1000, processed: 100, redis: 20 });
    // Let Prometheus scrape the end state a few times (pictures, not a synchronisation).
    await new Promise((r) => setTimeout(r, 5000));
    const end = Math.floor(Date.now() / 1000);
    process.stdout.write(`sent to ${WORKLOAD_TOPIC}: ${JSON.stringify(workload.sent)}; rendering ${start}..${end}\n`);

    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
    try {
      for (const file of readdirSync(DASHBOARDS).filter((f) => f.endsWith(".json")).sort()) {
        const dashboard = JSON.parse(readFileSync(join(DASHBOARDS, file), "utf8")) as { uid: string; title: string; panels: Panel[] };
        const panels: RenderedPanel[] = [];
        for (const panel of dashboard.panels) {
          const series: RenderedPanel["series"] = [];
          for (const target of panel.targets) {
            const expr = target.expr.replaceAll("$__rate_interval", "15s").replaceAll("$instance", ".*").replaceAll("$topic", ".*");
            for (const s of await prom.queryRange(expr, start, end, 1)) series.push({ label: legend(target.legendFormat, s), points: s.values.map(([t, v]) => [t * 1000, Number.isFinite(Number(v)) ? Number(v) : null]) });
          }
          panels.push({ title: panel.title, type: panel.type, unit: panel.fieldConfig.defaults.unit, gridPos: panel.gridPos, series });
        }
        const png = join(out, `${dashboard.uid}.png`);
        await renderPng(browser, dashboard.title, panels, [start * 1000, end * 1000], png);
        process.stdout.write(`wrote ${relative(ROOT, png)} (${panels.length} panels, ${panels.reduce((n, p) => n + p.series.length, 0)} series)\n`);
      }
    } finally {
      await browser.close();
    }
    await workload.close();
  } finally {
    slow.close();
    await prom.stop();
    for (const n of redisNodes) await n.close();
    await fileNode.close();
    await redis.stop();
  }
}

function legend(format: string, s: PromSeries): string {
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => s.metric[name] ?? "");
}

async function renderPng(browser: Awaited<ReturnType<typeof chromium.launch>>, title: string, panels: RenderedPanel[], range: [number, number], file: string): Promise<void> {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 }, deviceScaleFactor: 1 });
  try {
    await page.setContent(`<!doctype html><html><head><style>${CSS}</style></head><body><h1>${escapeHtml(title)}</h1><div id="grid"></div></body></html>`);
    await page.addScriptTag({ path: CHART_JS });
    // tsx compiles DRAW with esbuild's keepNames, which calls a __name helper the page lacks.
    await page.addScriptTag({ content: "globalThis.__name = (f) => f;" });
    await page.evaluate(DRAW, { panels, range });
    await page.waitForFunction(() => (window as unknown as { drawn?: boolean }).drawn === true);
    await page.screenshot({ path: file, fullPage: true });
  } finally {
    await page.close();
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

const CSS = `
body { margin: 0; padding: 12px 16px; background: #111217; color: #ccccdc; font: 13px Inter, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 18px; font-weight: 500; margin: 0 0 10px; }
#grid { display: grid; grid-template-columns: repeat(24, 1fr); grid-auto-rows: 30px; gap: 8px; }
.panel { background: #181b1f; border: 1px solid #2a2d35; border-radius: 2px; padding: 6px 8px; display: flex; flex-direction: column; min-width: 0; }
.panel h2 { font-size: 13px; font-weight: 500; margin: 0 0 4px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.panel .body { position: relative; flex: 1; min-height: 0; }
.stat { font-size: 40px; font-weight: 500; color: #73bf69; display: flex; align-items: center; justify-content: center; height: 100%; }
`;

/** Runs in the page: one Chart.js line chart (or a stat) per panel, on Grafana's grid. */
const DRAW = ({ panels, range }: { panels: RenderedPanel[]; range: [number, number] }) => {
  const Chart = (window as unknown as { Chart: new (canvas: HTMLCanvasElement, config: unknown) => unknown }).Chart;
  const palette = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0", "#37872d", "#fade2a"];
  const fmt = (unit: string, v: number): string => {
    const abs = Math.abs(v);
    const si = (x: number, suffix: string) => (Math.abs(x) >= 1e9 ? `${(x / 1e9).toFixed(1)}G` : Math.abs(x) >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : Math.abs(x) >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : `${+x.toFixed(2)}`) + suffix;
    switch (unit) {
      case "s":
        return abs === 0 ? "0" : abs < 1e-3 ? `${+(v * 1e6).toFixed(0)} µs` : abs < 1 ? `${+(v * 1e3).toFixed(1)} ms` : `${+v.toFixed(2)} s`;
      case "bytes":
        return abs >= 1 << 30 ? `${(v / (1 << 30)).toFixed(1)} GiB` : abs >= 1 << 20 ? `${(v / (1 << 20)).toFixed(1)} MiB` : abs >= 1024 ? `${(v / 1024).toFixed(1)} KiB` : `${+v.toFixed(0)} B`;
      case "Bps":
        return abs >= 1 << 20 ? `${(v / (1 << 20)).toFixed(1)} MiB/s` : abs >= 1024 ? `${(v / 1024).toFixed(1)} KiB/s` : `${+v.toFixed(0)} B/s`;
      case "ops":
        return si(v, "/s");
      case "percentunit":
        return `${+(v * 100).toFixed(1)}%`;
      default:
        return si(v, "");
    }
  };
  const grid = document.getElementById("grid")!;
  for (const panel of panels) {
    const div = document.createElement("div");
    div.className = "panel";
    div.style.gridColumn = `${panel.gridPos.x + 1} / span ${panel.gridPos.w}`;
    div.style.gridRow = `${panel.gridPos.y + 1} / span ${panel.gridPos.h}`;
    const h2 = document.createElement("h2");
    h2.textContent = panel.title;
    const body = document.createElement("div");
    body.className = "body";
    div.append(h2, body);
    grid.append(div);
    if (panel.type === "stat") {
      const last = panel.series.flatMap((s) => s.points.filter((p) => p[1] !== null)).pop();
      body.innerHTML = `<div class="stat">${last ? fmt(panel.unit, last[1]!) : "No data"}</div>`;
      continue;
    }
    const canvas = document.createElement("canvas");
    body.append(canvas);
    new Chart(canvas, {
      type: "line",
      data: {
        datasets: panel.series.map((s, i) => ({
          label: s.label,
          data: s.points.map(([x, y]) => ({ x, y })),
          borderColor: palette[i % palette.length],
          backgroundColor: palette[i % palette.length],
          borderWidth: 1.5,
          pointRadius: 0,
          spanGaps: false,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        plugins: {
          legend: {
            position: "bottom",
            // Like Grafana's legend "hide series with only zeros", once a panel has many series.
            labels: { color: "#ccccdc", boxWidth: 10, boxHeight: 2, font: { size: 11 }, filter: (item: { datasetIndex: number }) => panel.series.length <= 6 || panel.series[item.datasetIndex]!.points.some((p) => p[1] !== null && p[1] !== 0) },
          },
        },
        scales: {
          x: {
            type: "linear",
            min: range[0],
            max: range[1],
            grid: { color: "#2a2d35" },
            ticks: { color: "#8e8e9f", maxTicksLimit: 8, callback: (v: number) => new Date(v).toISOString().slice(11, 19) },
          },
          y: { beginAtZero: true, grid: { color: "#2a2d35" }, ticks: { color: "#8e8e9f", maxTicksLimit: 6, callback: (v: number) => fmt(panel.unit, v) } },
        },
      },
    });
  }
  (window as unknown as { drawn: boolean }).drawn = true;
};
