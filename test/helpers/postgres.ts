/**
 * A real PostgreSQL server per test (Debian's postgresql 15): `initdb` in a temp dir, then
 * `postgres` on a free loopback port with its socket in that dir, database `tributary`.
 * PostgreSQL refuses to run as root: under root the dir is chowned to `postgres` and the
 * binaries run through `runuser -u postgres`. Fails loudly when the binaries are missing.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./redis-harness.ts";
import { within } from "./wait.ts";

const BIN = "/usr/lib/postgresql/15/bin";
const run = promisify(execFile);

export interface PgServer {
  port: number;
  /** Connection string of database `tributary`. */
  url: string;
  /** One query on a fresh connection. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Stops the server (fast shutdown), keeping its data: a target outage. */
  down(): Promise<void>;
  /** Starts it again on the same port and data. */
  up(): Promise<void>;
  /** Stops it and removes its data. */
  stop(): Promise<void>;
}

function asPostgres(argv: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [argv[0]!, argv.slice(1)];
  return ["runuser", ["-u", "postgres", "--", ...argv]];
}

export async function startPostgres(): Promise<PgServer> {
  if (!existsSync(join(BIN, "postgres"))) throw new Error(`PostgreSQL 15 is not installed (${BIN}/postgres missing): apt-get install postgresql (.ci/run does)`);
  const dir = mkdtempSync(join(tmpdir(), "tributary-pg-"));
  if (process.getuid?.() === 0) {
    const id = await run("id", ["-u", "postgres"]).then((r) => Number(r.stdout.trim()));
    const gid = await run("id", ["-g", "postgres"]).then((r) => Number(r.stdout.trim()));
    chownSync(dir, id, gid);
  }
  const data = join(dir, "data");
  const user = process.getuid?.() === 0 ? "postgres" : userInfo().username;
  const [initCmd, initArgs] = asPostgres([join(BIN, "initdb"), "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"]);
  try {
    await run(initCmd, initArgs);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
  }
  const port = await freePort();
  const [cmd, args] = asPostgres([join(BIN, "postgres"), "-D", data, "-p", String(port), "-k", dir, "-h", "127.0.0.1", "-c", "max_connections=50"]);
  /** Starts the postmaster; resolves once it accepts connections, with a function that stops it. */
  async function launch(): Promise<() => Promise<void>> {
    const child: ChildProcess = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await within(
      new Promise<void>((resolve, reject) => {
        const onData = (d: Buffer) => {
          log += d.toString();
          if (log.includes("database system is ready to accept connections")) resolve();
        };
        child.stderr!.on("data", onData);
        child.stdout!.on("data", onData);
        void exited.then((code) => reject(new Error(`postgres exited with ${code} before it was ready:\n${log}`)));
      }),
      30_000,
      "postgres to accept connections",
    );
    return async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // Fast shutdown: SIGINT to the postmaster itself (runuser does not forward it); its pid is postmaster.pid's first line.
        const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
        process.kill(pid, "SIGINT");
      }
      await within(exited, 20_000, "postgres to stop");
    };
  }
  let stopServer = await launch();
  const admin = new pg.Client({ host: "127.0.0.1", port, user, database: "postgres" });
  await admin.connect();
  await admin.query("CREATE DATABASE tributary");
  await admin.end();
  const url = `postgres://${user}@127.0.0.1:${port}/tributary`;
  return {
    port,
    url,
    async query(sql, params) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query(sql, params)).rows;
      } finally {
        await client.end();
      }
    },
    async down() {
      await stopServer();
    },
    async up() {
      stopServer = await launch();
    },
    async stop() {
      await stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
