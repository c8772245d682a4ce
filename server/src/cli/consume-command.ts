/**
 * `tributary consume <topic>`: prints record values, one per line, from every partition
 * (or `--partition`), starting at `--from`, and follows new records like `tail -f` by
 * long-polling the HTTP read endpoint, until `--max` records, `--idle-timeout`, end of
 * the log with `--no-follow`, or Ctrl-C/SIGTERM (exit 0).
 *
 * Values by their content type (the `content-type` header, docs/semantics.md): JSON on one
 * line (compacted), `text/*` as is, `application/cbor` decoded and shown as JSON; anything
 * else, and records without a content type: UTF-8 text as is, other bytes raw; a null value
 * as `null`.
 * `--print-offsets` prints `partition<TAB>offset<TAB>key<TAB>value`. If the position is
 * lost while following (retention passed it, or the topic was re-created: the epoch
 * changed), a warning goes to stderr and the partition restarts from its earliest offset.
 */
import { decode as decodeCbor } from "cbor-x";
import { InvalidArgumentError, type Command } from "commander";
import { TributaryError, isTributaryError } from "../errors.ts";
import { parseDuration } from "../config/units.ts";
import type { ApiClient, BytesJson, RecordJson } from "./api-client.ts";
import { addUrlOption, clientFrom, intArg } from "./client-options.ts";

type From = "earliest" | "latest" | number;

interface ConsumeOptions {
  from: From;
  partition?: number;
  max?: number;
  printOffsets?: boolean;
  follow: boolean;
  idleTimeout?: number;
  url: string;
}

function fromArg(raw: string): From {
  if (raw === "earliest" || raw === "beginning") return "earliest";
  if (raw === "latest" || raw === "end") return "latest";
  if (/^\d+$/.test(raw)) return Number(raw);
  throw new InvalidArgumentError(`expected earliest, latest or an offset; got "${raw}"`);
}

function durationArg(raw: string): number {
  const ms = parseDuration(raw);
  if (ms === undefined || ms < 1) throw new InvalidArgumentError(`expected a duration like 500ms, 5s, 1m; got "${raw}"`);
  return ms;
}

export function registerConsumeCommand(program: Command): void {
  addUrlOption(
    program
      .command("consume <topic>")
      .description("Print records of a topic, one value per line, following new ones until Ctrl-C.")
      .option("--from <position>", "earliest, latest, or an offset (applied to every partition read)", fromArg, "latest" as From)
      .option("-p, --partition <n>", "read only this partition (default: all)", intArg("--partition"))
      .option("-n, --max <n>", "exit after this many records", intArg("--max", 1))
      .option("--print-offsets", "print partition<TAB>offset<TAB>key<TAB>value")
      .option("--no-follow", "exit at the end of the log instead of waiting for new records")
      .option("--idle-timeout <duration>", "exit after this long without a new record (e.g. 5s)", durationArg),
  ).action(async (topic: string, o: ConsumeOptions) => {
    const client = clientFrom(o);
    const description = await client.describeTopic(topic);
    let partitions = description.partitionInfo.map((p) => p.partition);
    if (o.partition !== undefined) {
      if (!partitions.includes(o.partition)) {
        throw new TributaryError("UNKNOWN_PARTITION", `topic ${topic} has partitions 0..${partitions.length - 1}, not ${o.partition}`);
      }
      partitions = [o.partition];
    }
    const consumer = new Consumer(client, topic, o);
    const stop = () => consumer.stop();
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    try {
      await consumer.run(partitions);
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    }
    const malformed = consumer.malformed > 0 ? ` (${consumer.malformed} not valid for their content type, printed as stored)` : "";
    process.stderr.write(`consumed ${consumer.count} record${consumer.count === 1 ? "" : "s"} from ${topic}${malformed}\n`);
  });
}

class Consumer {
  count = 0;
  /** Values that are not what their content type says (printed as stored, each noted on stderr). */
  malformed = 0;
  readonly #controller = new AbortController();
  #lastActivity = Date.now();
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly client: ApiClient,
    readonly topic: string,
    readonly options: ConsumeOptions,
  ) {}

  stop(): void {
    this.#controller.abort();
  }

  get stopped(): boolean {
    return this.#controller.signal.aborted;
  }

  async run(partitions: number[]): Promise<void> {
    const idle = this.options.idleTimeout;
    if (idle !== undefined) {
      this.#idleTimer = setInterval(() => {
        if (Date.now() - this.#lastActivity >= idle) this.stop();
      }, Math.min(idle, 200));
    }
    try {
      await Promise.all(partitions.map((p) => this.#follow(p)));
    } finally {
      clearInterval(this.#idleTimer);
    }
  }

  async #follow(partition: number): Promise<void> {
    const { options } = this;
    let offset: From = options.from;
    let epoch: string | undefined;
    const waitMs = options.follow ? Math.min(1000, options.idleTimeout ?? 1000) : 0;
    while (!this.stopped) {
      const remaining = options.max === undefined ? 500 : options.max - this.count;
      if (remaining <= 0) return this.stop();
      let result;
      try {
        result = await this.client.read(this.topic, partition, { offset, max: Math.min(500, remaining), waitMs }, this.#controller.signal);
      } catch (err) {
        if (this.stopped) return;
        if (epoch !== undefined && isTributaryError(err, "OFFSET_OUT_OF_RANGE")) {
          process.stderr.write(`tributary: partition ${partition}: offset ${offset} is no longer readable (retention or topic re-created); restarting from earliest\n`);
          offset = "earliest";
          epoch = undefined;
          continue;
        }
        this.stop();
        throw err;
      }
      if (epoch !== undefined && result.epoch !== epoch) {
        process.stderr.write(`tributary: partition ${partition}: history changed (epoch ${epoch} → ${result.epoch}, topic re-created?); restarting from earliest\n`);
        offset = "earliest";
        epoch = undefined;
        continue;
      }
      epoch = result.epoch;
      for (const record of result.records) {
        if (options.max !== undefined && this.count >= options.max) return this.stop();
        await this.#print(partition, record);
        this.count++;
        this.#lastActivity = Date.now();
        offset = record.offset + 1;
      }
      if (result.records.length === 0) offset = result.nextOffset;
      if (options.max !== undefined && this.count >= options.max) return this.stop();
      if (!options.follow && typeof offset === "number" && offset >= result.endOffset) return;
    }
  }

  async #print(partition: number, record: RecordJson): Promise<void> {
    const parts: Array<string | Buffer> = [];
    if (this.options.printOffsets) parts.push(`${partition}\t${record.offset}\t`, bytes(record.key), "\t");
    parts.push(valueOf(record, () => this.malformed++), "\n");
    const ok = process.stdout.write(Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : p))));
    if (!ok) await new Promise((resolve) => process.stdout.once("drain", resolve));
  }
}

function bytes(value: BytesJson): Buffer {
  if (value === null) return Buffer.from("null");
  if (typeof value === "string") return Buffer.from(value);
  return Buffer.from(value.base64, "base64");
}

function mediaTypeOf(record: RecordJson): string {
  const header = record.headers?.["content-type"];
  const text = header === undefined || header === null ? "" : typeof header === "string" ? header : Buffer.from(header.base64, "base64").toString("utf8");
  return text.split(";")[0]!.trim().toLowerCase();
}

/** The value as printed: by content type (module comment). */
export function valueOf(record: RecordJson, onMalformed: () => void = () => {}): Buffer {
  const raw = bytes(record.value);
  if (record.value === null) return raw;
  const type = mediaTypeOf(record);
  try {
    if (type === "application/json" || type.endsWith("+json")) return Buffer.from(JSON.stringify(JSON.parse(raw.toString("utf8"))));
    if (type === "application/cbor") {
      return Buffer.from(JSON.stringify(decodeCbor(raw), (_k, v: unknown) => (v instanceof Uint8Array ? { base64: Buffer.from(v).toString("base64") } : typeof v === "bigint" ? v.toString() : v)));
    }
  } catch (err) {
    // Not what its content type says: shown as it is, with a note (the reader still gets every record).
    onMalformed();
    process.stderr.write(`tributary: offset ${record.offset}: value is not valid ${type} (${(err as Error).message}); printed as stored\n`);
  }
  return raw;
}
