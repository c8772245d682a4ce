/**
 * The web console: a small single page served by the node at `/` (hash routes: overview,
 * topics, groups, live tail, publish, token login) over the HTTP API and the SDK over
 * WebSocket. Plain DOM, no framework, no build step: console/index.html, console.css,
 * console.js (token, API, client, router), console-views.js (overview, topics, groups),
 * console-tail.js (live tail, publish). Every file under console/ is copied to dist by
 * server/build.mjs; the list below is what is served.
 *
 * `GET /tributary.min.js` serves the SDK browser bundle. The compiled node (server/build.mjs)
 * reads it from console/tributary.min.js, built ahead of time beside the page; run from the
 * TypeScript sources (tests), where that file does not exist, it comes from
 * console-dev-bundle.ts (client-sdk/dist, or esbuild in-process), once, at mount.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type uWS from "uWebSockets.js";
import type { GatewayContext } from "../gateway-context.ts";

const here = dirname(fileURLToPath(import.meta.url));

interface Asset {
  body: Uint8Array | string;
  type: string;
}

const STATIC: Record<string, string> = {
  "/": "index.html",
  "/console.css": "console.css",
  "/console.js": "console.js",
  "/console-views.js": "console-views.js",
  "/console-tail.js": "console-tail.js",
};
const TYPES: Record<string, string> = { html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" };

/** The SDK browser bundle: prebuilt beside the page (compiled node), else the development bundle. */
export async function loadBrowserBundle(): Promise<Uint8Array> {
  try {
    return readFileSync(join(here, "console", "tributary.min.js"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const { buildBrowserBundle } = await import("./console-dev-bundle.ts");
  return buildBrowserBundle();
}

/** Mounts the console's files (`GET /`, `/console.css`, `/console*.js`) and `GET /tributary.min.js` on `app`. */
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
