/**
 * vitest globalSetup: brings the compiled node (server/dist, server/build.mjs) up to date
 * before any test runs, because the tests that spawn `tributary` run the compiled bin, as
 * users do. A no-op when nothing changed since the last build; a test run right after an
 * edit of server/src or client-sdk/src spawns the edited code, never a stale build.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const build = fileURLToPath(new URL("../server/build.mjs", import.meta.url));
  execFileSync(process.execPath, [build, "--if-stale"], { stdio: "inherit" });
}
