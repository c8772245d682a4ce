#!/usr/bin/env node
// Development entry point: runs the `tributary` command from its TypeScript sources through
// tsx (a root devDependency), resolving the workspace SDK to its sources. For working on the
// node without a build step (`npm run dev -- start`) and as the "before" of
// `npm run bench -- startup`; `npm start` and the `tributary` bin run the compiled node.
import { register } from "node:module";
import { register as registerTsx } from "tsx/esm/api";
import { runtimeProblem } from "./runtime-check.mjs";

const problem = runtimeProblem();
if (problem) {
  process.stderr.write(`tributary: ${problem}\n`);
  process.exit(1);
}
register(new URL("./source-conditions.mjs", import.meta.url));
registerTsx();
await import(new URL("../src/cli/main.ts", import.meta.url).href);
