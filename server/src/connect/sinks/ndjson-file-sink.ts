/**
 * NDJSON file sink (`type: ndjson-sink`): appends one JSON line per record to `path`, and
 * fsyncs each batch before it counts as written (at-least-once: after a crash, the records
 * since the group's last commit are appended again).
 *
 * format "record" (default): `{"topic","partition","offset","timestamp","key","contentType","headers","value"}`
 * (the webhook's record form); format "value": the value alone, as JSON when it is JSON,
 * else as a JSON string, so a file read by the NDJSON source comes out line for line.
 */
import { open, type FileHandle } from "node:fs/promises";
import type { FieldReader } from "../connect-config.ts";
import { SinkError, type SinkConnector, type SinkRecord } from "../connector.ts";
import { recordJson } from "./webhook-sink.ts";

export interface NdjsonSinkOptions {
  path: string;
  format: "record" | "value";
  fsync: boolean;
}

export function ndjsonSinkOptions(f: FieldReader): NdjsonSinkOptions {
  return { path: f.string("path"), format: f.oneOf("format", ["record", "value"] as const, "record"), fsync: f.bool("fsync", true) };
}

function valueLine(r: SinkRecord): string {
  if (r.value === null) return "null";
  const text = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength).toString("utf8");
  try {
    JSON.parse(text);
    return text.includes("\n") ? JSON.stringify(JSON.parse(text)) : text;
  } catch {
    return JSON.stringify(text);
  }
}

export class NdjsonFileSink implements SinkConnector {
  readonly #options: NdjsonSinkOptions;
  #file: FileHandle | undefined;

  constructor(options: NdjsonSinkOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    this.#file = await open(this.#options.path, "a");
  }

  async stop(): Promise<void> {
    await this.#file?.close();
    this.#file = undefined;
  }

  async write(records: SinkRecord[]): Promise<void> {
    const lines = records.map((r) => (this.#options.format === "value" ? valueLine(r) : JSON.stringify(recordJson(r)))).join("\n") + "\n";
    try {
      await this.#file!.appendFile(lines, "utf8");
      if (this.#options.fsync) await this.#file!.sync();
    } catch (err) {
      throw new SinkError("target", `${this.#options.path}: ${(err as Error).message}`, true, { cause: err });
    }
  }
}
