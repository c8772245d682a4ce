/**
 * vitest globalSetup: brings the compiled node (server/dist, server/build.mjs) up to date
 * before any test runs, because the tests that spawn `tributary` run the compiled bin, as
 * users do. A no-op when nothing changed since the last build; a test run right after an
 * edit of server/src or client-sdk/src spawns the edited code, never a stale build, and
 * when the sources do not build, the spawned bin says so (server/dist/build-error.txt).
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const build = fileURLToPath(new URL("../server/build.mjs", import.meta.url));
  try {
    execFileSync(process.execPath, [build, "--if-stale"], { stdio: "inherit" });
  } catch {
    // The sources do not build (an edit in progress in this shared checkout): the build
    // printed why and removed server/dist/main.js, so every test that spawns `tributary`
    // fails with that reason, as it did when the node ran its sources; the others still run.
    process.stderr.write("test/build-setup.ts: server/build.mjs failed: tests that spawn `tributary` will fail (see above)\n");
  }
}
