#!/usr/bin/env node
// Entry point of the `tributary` command: runs the TypeScript sources through tsx,
// resolving the workspace SDK package to its sources.
import { register } from "node:module";
import { register as registerTsx } from "tsx/esm/api";

register(new URL("./source-conditions.mjs", import.meta.url));
registerTsx();
await import(new URL("../src/cli/main.ts", import.meta.url).href);
