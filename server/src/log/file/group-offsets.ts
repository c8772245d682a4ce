/**
 * Committed consumer-group offsets of the file engine, in one append-only file
 * `<dataDir>/offsets.log`.
 *
 * Each line is `<crc32c as 8 hex digits> <json>\n`, the CRC over the JSON text:
 *   {"g":group,"t":topic,"p":partition,"o":offset,"e":epoch,"m":metadata,"c":committedAt}   a commit
 *   {"d":topic}                                                                             topic deleted
 * `e` is absent when the epoch is unknown (and in lines written before commits carried
 * epochs): such a commit reads back with epoch null.
 * A commit resolves once its line is fdatasynced (group commit: concurrent commits share
 * one sync). On open the file is replayed; a torn or corrupt last line (crash mid-write) is
 * dropped, a corrupt line in the middle is skipped (the group then resumes from an earlier
 * commit: at-least-once is kept). When the file holds many more lines than live entries it
 * is rewritten compactly (temp + fsync + rename + fsync dir), synchronously, between syncs.
 */
import { crc32c } from "@node-rs/crc32";
import fs from "node:fs";
import path from "node:path";
import { TributaryError } from "../../errors.ts";
import type { CommittedOffset } from "../log-engine.ts";
import { GroupCommit } from "./group-commit.ts";
import type { StorageHealth } from "./storage-health.ts";
import { fsyncDirSync } from "./topic-metadata.ts";

export const OFFSETS_FILE = "offsets.log";
const COMPACT_MIN_LINES = 10_000;

type Offsets = Map<string, Map<string, Map<number, CommittedOffset>>>;

interface CommitLine {
  g: string;
  t: string;
  p: number;
  o: number;
  /** Epoch of the committed position; absent = unknown. */
  e?: string;
  m: string;
  c: number;
}

function encodeLine(obj: object): string {
  const json = JSON.stringify(obj);
  return `${crc32c(json).toString(16).padStart(8, "0")} ${json}\n`;
}

export class GroupOffsetStore {
  readonly #file: string;
  #fd: number;
  readonly #offsets: Offsets;
  #lines: number;
  readonly #commit: GroupCommit;
  #closed = false;

  readonly #health: StorageHealth | undefined;
  #failed: unknown = null;

  private constructor(file: string, fd: number, offsets: Offsets, lines: number, health: StorageHealth | undefined) {
    this.#file = file;
    this.#fd = fd;
    this.#offsets = offsets;
    this.#lines = lines;
    this.#health = health;
    this.#commit = new GroupCommit(() => this.#sync());
  }

  static open(dataDir: string, warn: (message: string) => void, health?: StorageHealth): GroupOffsetStore {
    const file = path.join(dataDir, OFFSETS_FILE);
    const offsets: Offsets = new Map();
    let lines = 0;
    let text = "";
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const all = text.split("\n");
    // The last element is "" after a complete final line; anything else is a torn line.
    const complete = all.slice(0, -1);
    if (all[all.length - 1] !== "") warn(`${file}: dropped a torn last line`);
    for (let i = 0; i < complete.length; i++) {
      const line = complete[i]!;
      const json = line.slice(9);
      if (line[8] !== " " || parseInt(line.slice(0, 8), 16) !== crc32c(json)) {
        warn(`${file}: skipped corrupt line ${i + 1}`);
        continue;
      }
      apply(offsets, JSON.parse(json) as CommitLine | { d: string });
      lines++;
    }
    const store = new GroupOffsetStore(file, -1, offsets, lines, health);
    // Rewrite when the file had damage or garbage; otherwise append to it.
    if (lines !== complete.length || all[all.length - 1] !== "" || store.#shouldCompact()) store.#compactSync();
    else store.#fd = fs.openSync(file, "a");
    return store;
  }

  /** Records a commit; resolves once it is durable. */
  commit(group: string, topic: string, partition: number, offset: number, epoch: string | null, metadata: string, now: number): Promise<void> {
    const line: CommitLine = { g: group, t: topic, p: partition, o: offset, ...(epoch === null ? {} : { e: epoch }), m: metadata, c: now };
    this.#append(line);
    apply(this.#offsets, line);
    return this.#commit.request();
  }

  /** Forgets every group's offsets for a deleted topic. */
  deleteTopic(topic: string): Promise<void> {
    this.#append({ d: topic });
    apply(this.#offsets, { d: topic });
    return this.#commit.request();
  }

  fetch(group: string, topic: string, partition: number): CommittedOffset | null {
    const c = this.#offsets.get(group)?.get(topic)?.get(partition);
    return c ? { ...c } : null;
  }

  fetchGroup(group: string): Map<string, Map<number, CommittedOffset>> {
    const out = new Map<string, Map<number, CommittedOffset>>();
    for (const [topic, parts] of this.#offsets.get(group) ?? []) {
      out.set(topic, new Map([...parts].map(([p, c]) => [p, { ...c }])));
    }
    return out;
  }

  listGroups(): string[] {
    return [...this.#offsets.keys()].sort();
  }

  flush(): Promise<void> {
    return this.#commit.request();
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    fs.closeSync(this.#fd);
  }

  #append(obj: object): void {
    if (this.#closed) throw new TributaryError("UNAVAILABLE", "the offset store is closed");
    const data = encodeLine(obj);
    try {
      fs.writeSync(this.#fd, data);
    } catch (err) {
      throw new TributaryError("STORAGE_ERROR", `write to ${this.#file} failed: ${(err as Error).message}`, {}, { cause: err });
    }
    this.#lines++;
  }

  #shouldCompact(): boolean {
    if (this.#lines < COMPACT_MIN_LINES) return false;
    let live = 0;
    for (const topics of this.#offsets.values()) for (const parts of topics.values()) live += parts.size;
    return this.#lines > 2 * live;
  }

  async #sync(): Promise<void> {
    if (this.#closed) return;
    if (this.#shouldCompact()) {
      this.#compactSync(); // durable by itself
      return;
    }
    if (this.#failed) throw new TributaryError("STORAGE_ERROR", `${this.#file} failed to sync before; restart to recover`, {}, { cause: this.#failed });
    await new Promise<void>((resolve, reject) =>
      fs.fdatasync(this.#fd, (err) => {
        if (!err) return resolve();
        this.#failed = err;
        this.#health?.fsyncFailed(this.#file, err);
        reject(new TributaryError("STORAGE_ERROR", `fdatasync ${this.#file} failed: ${err.message}`, {}, { cause: err }));
      }),
    );
  }

  /** Rewrites the file with one line per live entry, durably, and appends to the new file. */
  #compactSync(): void {
    const tmp = `${this.#file}.tmp`;
    const parts: string[] = [];
    for (const [g, topics] of this.#offsets) {
      for (const [t, ps] of topics) for (const [p, c] of ps) parts.push(encodeLine(commitLine(g, t, p, c)));
    }
    const fd = fs.openSync(tmp, "w", 0o644);
    try {
      fs.writeFileSync(fd, parts.join(""));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.#file);
    fsyncDirSync(path.dirname(this.#file));
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = fs.openSync(this.#file, "a");
    this.#lines = parts.length;
  }
}

function apply(offsets: Offsets, line: CommitLine | { d: string }): void {
  if ("d" in line) {
    for (const [group, topics] of offsets) {
      topics.delete(line.d);
      if (topics.size === 0) offsets.delete(group);
    }
    return;
  }
  let topics = offsets.get(line.g);
  if (!topics) offsets.set(line.g, (topics = new Map()));
  let parts = topics.get(line.t);
  if (!parts) topics.set(line.t, (parts = new Map()));
  parts.set(line.p, { offset: line.o, epoch: typeof line.e === "string" ? line.e : null, metadata: line.m, committedAt: line.c });
}

function commitLine(g: string, t: string, p: number, c: CommittedOffset): CommitLine {
  return { g, t, p, o: c.offset, ...(c.epoch === null ? {} : { e: c.epoch }), m: c.metadata, c: c.committedAt };
}
