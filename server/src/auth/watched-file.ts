import { watch, type FSWatcher } from "node:fs";
import { SerialQueue } from "../serial-queue.ts";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { TributaryError, toTributaryError } from "../errors.ts";

export interface FileReload<T> {
  readonly path: string;
  /** The new value when the file changed and parsed; undefined when unchanged or failed. */
  readonly value?: T;
  /** Why the new content was not taken (the previous value stays in force). */
  readonly error?: TributaryError;
}

export interface WatchedFileOptions<T> {
  /** Watch the file's directory and reload on change (default true). */
  watch?: boolean;
  /** Called after every reload that changed the value or failed. */
  onReload?: (reload: FileReload<T>) => void;
  /** Quiet time after the last file event before reading (editors write in several steps). Default 25 ms. */
  settleMs?: number;
}

/**
 * A configuration file parsed into a value and kept current: `reload()` re-reads it on
 * demand, and a watcher on its directory (so replacing the file by rename, as editors and
 * Kubernetes config maps do, is seen) reloads it after a change. A new content that fails
 * to read or parse is reported and the previous value stays in force: a half-written or
 * broken file never drops the node's authentication data. Reloads run one at a time; an
 * unchanged content is not parsed again and not reported.
 */
export class WatchedFile<T> {
  readonly path: string;
  readonly #parse: (bytes: Buffer, path: string) => T;
  readonly #options: WatchedFileOptions<T>;
  #value: T;
  #bytes: Buffer;
  #watcher: FSWatcher | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #reloads = new SerialQueue();
  #closed = false;

  private constructor(path: string, parse: (bytes: Buffer, path: string) => T, options: WatchedFileOptions<T>, bytes: Buffer, value: T) {
    this.path = path;
    this.#parse = parse;
    this.#options = options;
    this.#bytes = bytes;
    this.#value = value;
  }

  /** Reads and parses the file; rejects with TributaryError("INVALID_CONFIG") naming the file when it cannot. */
  static async open<T>(path: string, parse: (bytes: Buffer, path: string) => T, options: WatchedFileOptions<T> = {}): Promise<WatchedFile<T>> {
    const bytes = await readConfigFile(path);
    const file = new WatchedFile(path, parse, options, bytes, parse(bytes, path));
    if (options.watch ?? true) file.#startWatching();
    return file;
  }

  get value(): T {
    return this.#value;
  }

  /** Re-reads the file now (after any reload already running). */
  reload(): Promise<FileReload<T>> {
    return this.#reloads.run(() => this.#reloadOnce());
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = null;
  }

  async #reloadOnce(): Promise<FileReload<T>> {
    let result: FileReload<T>;
    try {
      const bytes = await readConfigFile(this.path);
      if (bytes.equals(this.#bytes)) return { path: this.path };
      const value = this.#parse(bytes, this.path);
      this.#bytes = bytes;
      this.#value = value;
      result = { path: this.path, value };
    } catch (err) {
      result = { path: this.path, error: toTributaryError(err) };
    }
    if (!this.#closed) this.#options.onReload?.(result);
    return result;
  }

  #startWatching(): void {
    const name = basename(this.path);
    const watcher = watch(dirname(this.path), { persistent: false }, (_event, filename) => {
      // Any event naming the file, or an unnamed one, or a `..data`-style swap: re-read and compare.
      if (filename !== null && filename !== name && !filename.startsWith("..")) return;
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        this.#timer = null;
        void this.reload();
      }, this.#options.settleMs ?? 25);
      this.#timer.unref();
    });
    watcher.on("error", (err) => {
      this.#options.onReload?.({ path: this.path, error: new TributaryError("INTERNAL", `watching ${this.path} failed: ${err.message}; use reload() (SIGHUP) to pick up changes`, { file: this.path }, { cause: err }) });
    });
    this.#watcher = watcher;
  }
}

async function readConfigFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable by this process" : `cannot be read (${code ?? String(err)})`;
    throw new TributaryError("INVALID_CONFIG", `${path} ${what}`, { file: path }, { cause: err });
  }
}
