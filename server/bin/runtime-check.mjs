// Which Node versions run the node. uWebSockets.js (npm:@trufflesuite/uws-js-unofficial
// 20.30.0) ships native binaries per platform, CPU and Node ABI (`process.versions.modules`):
// 93 = Node 16, 108 = Node 18, 115 = Node 20. Without one it falls back to a slow pure-JS
// implementation after a mere console.warn; Tributary refuses to start instead. It supports
// Node 20 (`engines` ">=20 <21" in package.json); Node 16 and 18 have binaries but are
// older than the code needs. `UWS_USE_FALLBACK=1` (uWS's own switch) runs the slow path on
// purpose: it is not refused (uWS says so on stderr).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** Node major versions Tributary supports (each must have a uWS binary; see binaryName). */
export const SUPPORTED_NODE_MAJORS = [20];

/** File name of the uWS native binary for a runtime, as uWebSockets.js loads it. */
export function binaryName(platform, arch, modules) {
  return `uws_${platform}_${arch}_${modules}.node`;
}

function uwsBinaryExists(name) {
  try {
    const main = createRequire(import.meta.url).resolve("uWebSockets.js");
    return existsSync(join(dirname(main), "..", "binaries", name));
  } catch {
    return false;
  }
}

/**
 * Why this runtime cannot run the node, or undefined when it can. Defaults describe the
 * running process; tests pass other runtimes.
 */
export function runtimeProblem({
  version = process.versions.node,
  modules = process.versions.modules,
  platform = process.platform,
  arch = process.arch,
  env = process.env,
  binaryExists = uwsBinaryExists,
} = {}) {
  if (/^(1|true)$/i.test(env.UWS_USE_FALLBACK ?? "")) return undefined;
  const major = Number(version.split(".")[0]);
  const supported = SUPPORTED_NODE_MAJORS.map((m) => `Node ${m}.x`).join(", ");
  if (!SUPPORTED_NODE_MAJORS.includes(major)) {
    return `Node ${version} is not supported: Tributary runs on ${supported} (uWebSockets.js has native binaries for Node 16/18/20 only; on other versions it would fall back to a slow path). Install ${supported}, e.g. \`nvm install 20\`.`;
  }
  const name = binaryName(platform, arch, modules);
  if (!binaryExists(name)) {
    return `uWebSockets.js has no native binary for Node ${version} on ${platform}-${arch} (${name}; binaries exist for linux x64/arm64/arm, darwin x64/arm64 and win32 x64): refusing the slow fallback. Run on a supported platform, or set UWS_USE_FALLBACK=1 to accept it.`;
  }
  return undefined;
}
