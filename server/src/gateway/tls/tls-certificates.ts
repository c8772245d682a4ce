/**
 * The node's current TLS certificate, kept current without a restart: `reload()` (SIGHUP)
 * re-reads the files, and a watcher on their directories (so a replacement by rename, as
 * certbot, editors and Kubernetes secrets do, is seen) reloads after a change. A new set
 * that fails the checks of tls-material.ts (half-written files, a key not yet matching its
 * new certificate) is logged as `tls.reload_failed` and the previous certificate stays in
 * force; the next change (the second file landing) is read again.
 *
 * Listeners take the certificate from here:
 *   - node:tls servers (MQTTS): `secureContextOptions()`, and `server.setSecureContext()`
 *     on every `change`: each new connection gets the new certificate.
 *   - uWS (HTTPS/WSS): `uwsOptions()` gives file names, because uWS reads only files. They
 *     are a private copy of the checked bytes (a directory of mode 0700 under the OS temp
 *     dir, removed on close), written under a new name at each reload, so uWS never reads
 *     a file that is being replaced nor one that failed the checks (a bad file makes uWS
 *     crash the process). What uWS can and cannot reload: uws-app.ts.
 *
 * Events: `change` (a new certificate is in force; payload: its TlsMaterial).
 */
import { SerialQueue } from "../../serial-queue.ts";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync, watch, writeFileSync, type FSWatcher } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { TributaryConfig } from "../../config/config.ts";
import { toTributaryError, type TributaryError } from "../../errors.ts";
import type { Logger } from "../../logger.ts";
import { readTlsMaterial, type TlsMaterial } from "./tls-material.ts";

export interface TlsReload {
  /** True when a new certificate is now in force. */
  changed: boolean;
  /** Why the files were not taken (the previous certificate stays). */
  error?: TributaryError;
}

/** Quiet time after the last file event before reading (a renewal writes cert and key in two steps). */
const SETTLE_MS = 50;

export class TlsCertificates extends EventEmitter<{ change: [TlsMaterial] }> {
  readonly #config: TributaryConfig["tls"];
  readonly #log: Logger;
  readonly #dir: string;
  #material: TlsMaterial;
  #generation = 0;
  #uwsFiles!: { cert: string; key: string };
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | null = null;
  readonly #reloads = new SerialQueue();
  #closed = false;

  private constructor(config: TributaryConfig["tls"], log: Logger, material: TlsMaterial) {
    super();
    this.#config = config;
    this.#log = log;
    this.#material = material;
    this.#dir = mkdtempSync(join(tmpdir(), "tributary-tls-"));
    this.#writeUwsFiles();
  }

  /** Reads and checks the files (INVALID_CONFIG saying what to fix), then watches them unless `watch: false`. */
  static async open(config: TributaryConfig["tls"], log: Logger, options: { watch?: boolean } = {}): Promise<TlsCertificates> {
    const certs = new TlsCertificates(config, log, await readTlsMaterial(config));
    if (options.watch ?? true) certs.#startWatching();
    log.info("tls.certificate", certs.#describe());
    return certs;
  }

  get material(): TlsMaterial {
    return this.#material;
  }

  /** Options for node:tls `createServer` / `setSecureContext`. */
  secureContextOptions(): { cert: Buffer; key: Buffer; passphrase?: string } {
    const { certChain, key, passphrase } = this.#material;
    return passphrase === undefined ? { cert: certChain, key } : { cert: certChain, key, passphrase };
  }

  /** uWS AppOptions: a checked private copy of the current files. */
  uwsOptions(): { cert_file_name: string; key_file_name: string; passphrase?: string } {
    const { passphrase } = this.#material;
    const files = { cert_file_name: this.#uwsFiles.cert, key_file_name: this.#uwsFiles.key };
    return passphrase === undefined ? files : { ...files, passphrase };
  }

  /** Re-reads the files now (after any reload already running); emits `change` when they changed and pass the checks. */
  reload(): Promise<TlsReload> {
    return this.#reloads.run(() => this.#reloadOnce());
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #reloadOnce(): Promise<TlsReload> {
    if (this.#closed) return { changed: false };
    let material: TlsMaterial;
    try {
      material = await readTlsMaterial(this.#config);
    } catch (err) {
      const error = toTributaryError(err);
      this.#log.warn("tls.reload_failed", { message: error.message, keeping: this.#material.leaf.serial });
      return { changed: false, error };
    }
    if (this.#closed || material.source.equals(this.#material.source)) return { changed: false };
    this.#material = material;
    this.#writeUwsFiles();
    this.#log.info("tls.reloaded", this.#describe());
    this.emit("change", material);
    return { changed: true };
  }

  #writeUwsFiles(): void {
    const previous = this.#uwsFiles as { cert: string; key: string } | undefined;
    this.#generation += 1;
    const files = { cert: join(this.#dir, `cert-${this.#generation}.pem`), key: join(this.#dir, `key-${this.#generation}.pem`) };
    writeFileSync(files.cert, this.#material.certChain, { mode: 0o600 });
    writeFileSync(files.key, this.#material.key, { mode: 0o600 });
    this.#uwsFiles = files;
    // uWS reads the files when given them (SSLApp, addServerName), never later: the old copy can go.
    if (previous) for (const f of [previous.cert, previous.key]) rmSync(f, { force: true });
  }

  #describe(): Record<string, unknown> {
    const { leaf } = this.#material;
    return { serial: leaf.serial, subject: leaf.subject, dnsNames: leaf.dnsNames, validTo: leaf.validTo.toISOString() };
  }

  #startWatching(): void {
    const files = [this.#config.certFile, this.#config.keyFile, this.#config.caFile, this.#config.passphraseFile].filter((f): f is string => f !== null).map((f) => resolve(f));
    const byDir = new Map<string, Set<string>>();
    for (const f of files) {
      const names = byDir.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      byDir.set(dirname(f), names);
    }
    for (const [dir, names] of byDir) {
      const watcher = watch(dir, { persistent: false }, (_event, filename) => {
        // An event naming one of the files, an unnamed one, or a `..data`-style swap (Kubernetes): re-read and compare.
        if (filename !== null && !names.has(filename) && !filename.startsWith("..")) return;
        if (this.#timer) clearTimeout(this.#timer);
        this.#timer = setTimeout(() => {
          this.#timer = null;
          void this.reload();
        }, SETTLE_MS);
        this.#timer.unref();
      });
      watcher.on("error", (err) => this.#log.warn("tls.watch_failed", { dir, message: err.message, hint: "send SIGHUP to reload the certificate" }));
      this.#watchers.push(watcher);
    }
  }
}
