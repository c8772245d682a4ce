/**
 * A real Mosquitto broker per test (Debian's /usr/sbin/mosquitto) on a free loopback port,
 * anonymous, no persistence; resolves once it logged that it is running. Fails loudly when
 * mosquitto is not installed.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./redis-harness.ts";
import { within } from "./wait.ts";

const MOSQUITTO = "/usr/sbin/mosquitto";

export interface Mosquitto {
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startMosquitto(): Promise<Mosquitto> {
  if (!existsSync(MOSQUITTO)) throw new Error(`mosquitto is not installed (${MOSQUITTO} missing): apt-get install mosquitto (.ci/run does)`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "mosquitto-"));
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "max_queued_messages 100000", "log_dest stderr", "log_type error", "log_type warning", "log_type notice", "log_type information", ""].join("\n"));
  const child = spawn(MOSQUITTO, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await within(
    new Promise<void>((resolve, reject) => {
      child.stderr!.on("data", (d: Buffer) => {
        log += d.toString();
        if (/Opening ipv4 listen socket on port/.test(log) && /running/.test(log)) resolve();
      });
      void exited.then((code) => reject(new Error(`mosquitto exited with ${code}:\n${log}`)));
    }),
    10_000,
    "mosquitto to start",
  );
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await within(exited, 10_000, "mosquitto to stop");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
