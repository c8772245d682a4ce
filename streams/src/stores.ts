/**
 * State stores of one task, in memory, each backed by a changelog topic partition.
 *
 * Every entry remembers `through`: the input offset its task had reached (exclusive) when
 * the entry was last written to the changelog. A record at an offset below it is already
 * part of the entry, so processing it again (after a crash, a batch is read again from the
 * last commit) leaves the entry as it is: state is updated exactly once per record even
 * when a flush wrote only some of its changelog records before the process died.
 *
 * Changelog records: key = the store key, value `{ a: aggregate, t: through }`, or a
 * tombstone (null) once a closed window is no longer needed.
 */
import { isClosed, type TimeWindows, type Window } from "./windows.ts";

export interface ChangelogRecord {
  key: string;
  /** Null: a tombstone. */
  value: { a: unknown; t: number } | null;
}

interface Entry {
  agg: unknown;
  /** Input offset (exclusive) this entry includes; 0 for an entry never logged. */
  through: number;
  logged: boolean;
}

/** Non-windowed aggregates: one entry per key. */
export class KeyValueStore {
  readonly name: string;
  readonly #entries = new Map<string, Entry>();
  readonly #dirty = new Set<string>();

  constructor(name: string) {
    this.name = name;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): unknown {
    return this.#entries.get(key)?.agg;
  }

  /** Applies `fn` to the key's aggregate unless the record at `offset` is already in it; false when skipped. */
  update(key: string, offset: number, fn: (agg: unknown) => unknown, init: () => unknown): boolean {
    let e = this.#entries.get(key);
    if (e && offset < e.through) return false;
    if (!e) {
      e = { agg: init(), through: 0, logged: false };
      this.#entries.set(key, e);
    }
    e.agg = fn(e.agg);
    this.#dirty.add(key);
    return true;
  }

  /** Keys changed since the last snapshot, with their aggregates (in first-change order). */
  changed(): Array<{ key: string; agg: unknown }> {
    return [...this.#dirty].map((key) => ({ key, agg: this.#entries.get(key)!.agg }));
  }

  /** The changelog records of what changed since the last snapshot; entries now include input below `through`. */
  snapshot(through: number): ChangelogRecord[] {
    const out: ChangelogRecord[] = [];
    for (const key of this.#dirty) {
      const e = this.#entries.get(key)!;
      e.through = through;
      e.logged = true;
      out.push({ key, value: { a: e.agg, t: through } });
    }
    this.#dirty.clear();
    return out;
  }

  restore(record: ChangelogRecord): void {
    if (record.value === null) this.#entries.delete(record.key);
    else this.#entries.set(record.key, { agg: record.value.a, through: record.value.t, logged: true });
  }

  /** Flush done (outbox and outputs acknowledged). */
  flushed(): void {}
}

export interface ClosedWindow {
  key: string;
  window: Window;
  agg: unknown;
}

/**
 * Windowed aggregates: one entry per (key, window), store key `<start>:<key>`. Windows are
 * closed in end order once the stream time passes end + grace; a closed window is removed
 * (its final result goes downstream once), and its changelog record is deleted (a
 * tombstone) in the flush after the one that emitted it, when the stream time that closed
 * it is durable (so a restore never reopens it).
 */
export class WindowStore {
  readonly name: string;
  readonly windows: TimeWindows;
  readonly #entries = new Map<string, Entry & { key: string; window: Window }>();
  /** Window end → store keys of open windows ending there. */
  readonly #byEnd = new Map<number, Set<string>>();
  /** Distinct ends of open windows, ascending. */
  readonly #ends: number[] = [];
  readonly #dirty = new Set<string>();
  /** Logged windows closed since the last snapshot: tombstoned once that flush is done. */
  #closedLogged: string[] = [];
  /** Closed in a finished flush: tombstoned in the next snapshot. */
  #closedInFlush: string[] = [];
  #tombstones: string[] = [];

  constructor(name: string, windows: TimeWindows) {
    this.name = name;
    this.windows = windows;
  }

  /** Open windows held. */
  get size(): number {
    return this.#entries.size;
  }

  static storeKey(key: string, window: Window): string {
    return `${window.start}:${key}`;
  }

  get(key: string, window: Window): unknown {
    return this.#entries.get(WindowStore.storeKey(key, window))?.agg;
  }

  /** Applies `fn` to the window's aggregate unless the record at `offset` is already in it; false when skipped. */
  update(key: string, window: Window, offset: number, fn: (agg: unknown) => unknown, init: () => unknown): boolean {
    const sk = WindowStore.storeKey(key, window);
    let e = this.#entries.get(sk);
    if (e && offset < e.through) return false;
    if (!e) {
      e = { key, window, agg: init(), through: 0, logged: false };
      this.#entries.set(sk, e);
      this.#index(sk, window.end);
    }
    e.agg = fn(e.agg);
    this.#dirty.add(sk);
    return true;
  }

  /** Closes (removes and returns, oldest end first) every window closed at `streamTime`. */
  close(streamTime: number): ClosedWindow[] {
    const out: ClosedWindow[] = [];
    while (this.#ends.length > 0 && isClosed(this.windows, this.#ends[0]!, streamTime)) {
      const end = this.#ends.shift()!;
      const keys = this.#byEnd.get(end)!;
      this.#byEnd.delete(end);
      for (const sk of keys) {
        const e = this.#entries.get(sk)!;
        this.#entries.delete(sk);
        this.#dirty.delete(sk);
        if (e.logged) this.#closedLogged.push(sk);
        out.push({ key: e.key, window: e.window, agg: e.agg });
      }
    }
    return out;
  }

  snapshot(through: number): ChangelogRecord[] {
    const out: ChangelogRecord[] = [];
    for (const sk of this.#dirty) {
      const e = this.#entries.get(sk)!;
      e.through = through;
      e.logged = true;
      out.push({ key: sk, value: { a: e.agg, t: through } });
    }
    this.#dirty.clear();
    for (const sk of this.#tombstones) out.push({ key: sk, value: null });
    this.#tombstones = [];
    this.#closedInFlush = this.#closedLogged;
    this.#closedLogged = [];
    return out;
  }

  /** The flush of the last snapshot is done: the windows it closed may be tombstoned now. */
  flushed(): void {
    for (const sk of this.#closedInFlush) this.#tombstones.push(sk);
    this.#closedInFlush = [];
  }

  restore(record: ChangelogRecord): void {
    const existing = this.#entries.get(record.key);
    if (existing) this.#unindex(record.key, existing.window.end);
    if (record.value === null) {
      this.#entries.delete(record.key);
      return;
    }
    const colon = record.key.indexOf(":");
    const start = Number(record.key.slice(0, colon));
    const window = { start, end: start + this.windows.sizeMs };
    this.#entries.set(record.key, { key: record.key.slice(colon + 1), window, agg: record.value.a, through: record.value.t, logged: true });
    this.#index(record.key, window.end);
  }

  /** After a restore: windows already closed at the durable stream time are dropped (emitted before) and tombstoned next. */
  dropClosed(streamTime: number): void {
    for (const closed of this.close(streamTime)) this.#tombstones.push(WindowStore.storeKey(closed.key, closed.window));
    this.#closedLogged = [];
  }

  #index(sk: string, end: number): void {
    let set = this.#byEnd.get(end);
    if (!set) {
      set = new Set();
      this.#byEnd.set(end, set);
      let lo = 0;
      let hi = this.#ends.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.#ends[mid]! < end) lo = mid + 1;
        else hi = mid;
      }
      this.#ends.splice(lo, 0, end);
    }
    set.add(sk);
  }

  #unindex(sk: string, end: number): void {
    const set = this.#byEnd.get(end);
    if (!set) return;
    set.delete(sk);
    if (set.size === 0) {
      this.#byEnd.delete(end);
      const i = this.#ends.indexOf(end);
      if (i >= 0) this.#ends.splice(i, 1);
    }
  }
}
