/**
 * NDJSON file source (`type: ndjson-source`): reads `path` line by line, one record per
 * non-empty line (JSON lines as `application/json`; a line that is not JSON goes as text and
 * counts as a source failure), and with `follow` (default) keeps reading what is appended.
 *
 * Position (saved in the offsets topic after each batch is acknowledged): the file's
 * identity (device and inode), the byte offset after the last complete line, and the line
 * count. A different file under the path (rotation) or a shorter one (truncation) is read
 * from its start. A last line without its newline waits for it.
 */
import { open, stat } from "node:fs/promises";
import type { FieldReader } from "../connect-config.ts";
import type { SourceConnector, SourceContext, SourceRecord } from "../connector.ts";
import { abortableSleep } from "../retry.ts";

export interface NdjsonSourceOptions {
  path: string;
  batchSize: number;
  keyField: string | null;
  follow: boolean;
  pollMs: number;
}

export function ndjsonSourceOptions(f: FieldReader): NdjsonSourceOptions {
  return {
    path: f.string("path"),
    batchSize: f.int("batchSize", 500, 1, 10_000),
    keyField: f.string("keyField", null),
    follow: f.bool("follow", true),
    pollMs: f.int("pollMs", 200, 10, 60_000),
  };
}

interface FilePosition {
  identity: string;
  offset: number;
  line: number;
}

const CHUNK = 1 << 20;

export class NdjsonFileSource implements SourceConnector {
  readonly #options: NdjsonSourceOptions;

  constructor(options: NdjsonSourceOptions) {
    this.#options = options;
  }

  async run(ctx: SourceContext): Promise<void> {
    const { path, pollMs } = this.#options;
    let pos = (ctx.position as FilePosition | null) ?? null;
    while (!ctx.signal.aborted) {
      let st;
      try {
        st = await stat(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        if (!this.#options.follow) return;
        await abortableSleep(pollMs, ctx.signal); // not there yet: wait for it
        continue;
      }
      const identity = `${st.dev}-${st.ino}`;
      if (pos === null || pos.identity !== identity || st.size < pos.offset) pos = { identity, offset: 0, line: 0 };
      if (st.size > pos.offset) {
        const next = await this.#readBatch(ctx, pos, Math.min(st.size, pos.offset + CHUNK));
        if (next !== null) {
          pos = next;
          continue;
        }
      } else if (!this.#options.follow) {
        return;
      }
      await abortableSleep(pollMs, ctx.signal);
    }
  }

  /** Sends up to batchSize complete lines from `pos`; the new position, or null when no line is complete yet. */
  async #readBatch(ctx: SourceContext, pos: FilePosition, end: number): Promise<FilePosition | null> {
    const file = await open(this.#options.path, "r");
    let buf: Buffer;
    try {
      buf = Buffer.alloc(end - pos.offset);
      const { bytesRead } = await file.read(buf, 0, buf.length, pos.offset);
      buf = buf.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
    const records: SourceRecord[] = [];
    let consumed = 0;
    let lines = 0;
    while (records.length < this.#options.batchSize) {
      const nl = buf.indexOf(0x0a, consumed);
      if (nl < 0) break;
      const text = buf.subarray(consumed, nl).toString("utf8").replace(/\r$/, "");
      consumed = nl + 1;
      lines++;
      if (text.trim() === "") continue;
      records.push(this.#toRecord(ctx, text, pos.line + lines));
    }
    if (lines === 0) return null;
    const next = { identity: pos.identity, offset: pos.offset + consumed, line: pos.line + lines };
    await ctx.send(records, next);
    return next;
  }

  #toRecord(ctx: SourceContext, text: string, line: number): SourceRecord {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      ctx.failed(`${this.#options.path}:${line} is not JSON (sent as text)`, err);
      return { key: null, value: text, contentType: "text/plain; charset=utf-8" };
    }
    let key: string | null = null;
    const field = this.#options.keyField;
    if (field !== null && typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      const v = (parsed as Record<string, unknown>)[field];
      if (v !== undefined && v !== null) key = typeof v === "string" ? v : JSON.stringify(v);
    }
    return { key, value: text, contentType: "application/json" };
  }
}
