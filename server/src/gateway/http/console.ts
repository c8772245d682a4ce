/**
 * The web console: a small page served by the node at `/` that lists topics (HTTP API
 * `GET /topics`), live-tails one through the SDK over WebSocket, and publishes test
 * messages. Plain DOM, no framework: console/index.html + console/console.js.
 *
 * `GET /tributary.min.js` serves the SDK browser bundle: client-sdk/dist/tributary.min.js
 * when it exists and is newer than the SDK sources, otherwise the same bundle built
 * in-process with esbuild (the options come from client-sdk/build.mjs) once, at mount.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type uWS from "uWebSockets.js";
import type { GatewayContext } from "../gateway-context.ts";

const here = dirname(fileURLToPath(import.meta.url));

interface Asset {
  body: Uint8Array | string;
  type: string;
}

const STATIC: Record<string, string> = {
  "/": "index.html",
  "/console.js": "console.js",
};
const TYPES: Record<string, string> = { html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8" };

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!entry.endsWith(".ts") || entry.endsWith(".test.ts")) continue;
    newest = Math.max(newest, statSync(join(dir, entry)).mtimeMs);
  }
  return newest;
}

/** The SDK browser bundle: dist if fresh, else built in-process with esbuild. */
export async function loadBrowserBundle(): Promise<Uint8Array> {
  const sdkDir = dirname(createRequire(import.meta.url).resolve("@tributary/client/package.json"));
  const dist = join(sdkDir, "dist", "tributary.min.js");
  try {
    if (statSync(dist).mtimeMs >= newestMtime(join(sdkDir, "src"))) return readFileSync(dist);
  } catch {
    // No dist (or it cannot be read): build the bundle below; a failed build is logged and counted by attachConsole.
  }
  const { browserBundleOptions } = (await import(pathToFileURL(join(sdkDir, "build.mjs")).href)) as {
    browserBundleOptions(format: "iife" | "esm"): Record<string, unknown>;
  };
  const esbuild = await import("esbuild");
  const result = await esbuild.build({ ...browserBundleOptions("iife"), outfile: join(sdkDir, "dist", "tributary.min.js"), write: false, logLevel: "silent" });
  const file = result.outputFiles?.find((f) => f.path.endsWith(".js"));
  if (!file) throw new Error("esbuild produced no bundle");
  return file.contents;
}

/** Mounts `GET /`, `GET /console.js` and `GET /tributary.min.js` on `app`. */
export function attachConsole(app: uWS.TemplatedApp, ctx: GatewayContext): void {
  for (const [route, file] of Object.entries(STATIC)) {
    const asset: Asset = { body: readFileSync(join(here, "console", file)), type: TYPES[file.split(".").pop()!]! };
    app.get(route, (res) => send(res, "200 OK", asset));
  }
  // Never rejects: a failed build is logged, counted (task `console-bundle`) and served as a
  // script that says so in the browser console; the rest of the console keeps working.
  const bundle = loadBrowserBundle().then(
    (body): Asset => ({ body, type: TYPES.js! }),
    (err: unknown): Asset => {
      ctx.log.error("console.bundle_failed", { message: err instanceof Error ? err.message : String(err) });
      ctx.broker.metrics.backgroundErrors.inc({ task: "console-bundle" });
      return { body: `console.error(${JSON.stringify(`tributary.min.js could not be built: ${String(err)}`)});`, type: TYPES.js! };
    },
  );
  app.get("/tributary.min.js", (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void bundle.then((asset) => {
      if (!aborted) res.cork(() => send(res, "200 OK", asset));
    });
  });
}

function send(res: uWS.HttpResponse, status: string, asset: Asset): void {
  res.writeStatus(status).writeHeader("content-type", asset.type).writeHeader("cache-control", "no-cache").writeHeader("x-content-type-options", "nosniff").end(asset.body);
}
