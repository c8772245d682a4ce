import fs from "node:fs";
import path from "node:path";
import { TributaryError } from "../../errors.ts";

/** File in the data dir naming the process that owns it. */
export const LOCK_FILE = "tributary.lock";

/**
 * One owner per data dir. Two nodes on one directory would each append to the same
 * segments and lose each other's records, so the file engine takes this lock before it
 * reads anything: `<dataDir>/tributary.lock` is created exclusively and holds the owner's
 * pid. A lock left by a process that no longer runs (a crash, a SIGKILL) is taken over; a
 * live holder makes `acquire` fail with UNAVAILABLE naming its pid. The same process may
 * open a data dir again (tests reopen one to simulate a restart); within a process the
 * caller keeps one engine per directory.
 */
export class DataDirLock {
  readonly file: string;
  #released = false;

  private constructor(file: string) {
    this.file = file;
  }

  static acquire(dataDir: string): DataDirLock {
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, LOCK_FILE);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = fs.openSync(file, "wx");
        fs.writeSync(fd, `${process.pid}\n`);
        fs.closeSync(fd);
        return new DataDirLock(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
          throw new TributaryError("STORAGE_ERROR", `cannot create the lock ${file}: ${(err as Error).message}`, { dataDir }, { cause: err });
        }
      }
      const holder = readPid(file);
      if (holder === process.pid) return new DataDirLock(file);
      if (holder !== null && isTributaryProcess(holder)) {
        throw new TributaryError(
          "UNAVAILABLE",
          `data dir ${dataDir} is in use by another tributary node (pid ${holder}); stop it, or give this node its own --data-dir`,
          { dataDir, pid: holder },
        );
      }
      // Left by a process that is gone: take it over (another starting node may race us: `wx` decides).
      fs.rmSync(file, { force: true });
    }
    throw new TributaryError("UNAVAILABLE", `could not take the lock ${file}: another node keeps taking it`, { dataDir });
  }

  /** Removes the lock if it is still ours. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (readPid(this.file) === process.pid) fs.rmSync(this.file, { force: true });
  }
}

function readPid(file: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null; // gone meanwhile, or unreadable: no holder we can name
  }
}

/** The pid runs, and (where /proc tells) it is a node process, not another program that reused the pid. */
function isTributaryProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    return /node|tributary/.test(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"));
  } catch {
    return true; // no /proc: a live pid is the holder
  }
}
