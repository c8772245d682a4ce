#!/usr/bin/env node
// Entry point of the `tributary` command: checks that this Node has the native
// uWebSockets.js binary (runtime-check.mjs), then runs the compiled node, dist/main.js
// (server/build.mjs; `npm ci` builds it through the root `prepare` script).
import { existsSync, readFileSync } from "node:fs";
import { runtimeProblem } from "./runtime-check.mjs";

const problem = runtimeProblem();
if (problem) {
  process.stderr.write(`tributary: ${problem}\n`);
  process.exit(1); // EXIT.FAILURE (server/src/cli/exit-codes.ts)
}
const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(main)) {
  const buildError = new URL("../dist/build-error.txt", import.meta.url);
  const why = existsSync(buildError) ? `; the last build failed:\n${readFileSync(buildError, "utf8")}` : "\n";
  process.stderr.write(`tributary: the node is not built (${main.pathname} is missing): run \`npm run build\` (npm ci does it)${why}`);
  process.exit(1);
}
await import(main.href);
