/**
 * `tributary produce <topic>`: reads stdin, one record per line, and sends the lines in
 * batches over the HTTP API, one batch in flight at a time (so line order is kept per
 * partition). A batch closes at `--batch-size` lines, ~512 KiB, or `--linger` ms after its
 * first line (interactive use). Each batch carries the run's producerId and a sequence
 * number, so a batch retried after a network error is written once. A summary goes to
 * stderr; nothing to stdout.
 *
 * Each line is a UTF-8 text value: the record's content type is `text/plain; charset=utf-8`
 * unless `--content-type` names another (`application/json` checks that every line is JSON).
 */
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { InvalidArgumentError, type Command } from "commander";
import { TributaryError } from "../errors.ts";
import { isRetriable, type ApiClient, type ProduceBody } from "./api-client.ts";
import { addUrlOption, clientFrom, intArg } from "./client-options.ts";

const MAX_BATCH_CHARS = 512 * 1024;
const RETRIES = 3;

interface ProduceOptions {
  key?: string;
  keyed?: boolean;
  separator: string;
  partition?: number;
  contentType?: string;
  acks: 0 | 1 | "all";
  batchSize: number;
  linger: number;
  url: string;
}

export function acksArg(raw: string): 0 | 1 | "all" {
  if (raw === "0") return 0;
  if (raw === "1") return 1;
  if (raw === "all" || raw === "-1") return "all";
  throw new InvalidArgumentError(`expected 0, 1 or all; got "${raw}"`);
}

const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$/;

export function contentTypeArg(raw: string): string {
  if (!MEDIA_TYPE.test(raw)) throw new InvalidArgumentError(`expected a media type like application/json or "text/plain; charset=utf-8"; got "${raw}"`);
  return raw;
}

function isJsonType(contentType: string): boolean {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || type.endsWith("+json");
}

/** A record of the produce body; `contentType` is the HTTP API's record field (docs/http-api.md). */
type LineRecord = ProduceBody["records"][number] & { contentType?: string };

export function registerProduceCommand(program: Command): void {
  addUrlOption(
    program
      .command("produce <topic>")
      .description("Produce stdin lines as records (one line = one value) until end of input.")
      .option("-k, --key <key>", "key of every record (same key → same partition, in order)")
      .option("--keyed", "lines are key<TAB>value (see --separator)")
      .option("--separator <text>", "key/value separator for --keyed", "\t")
      .option("-p, --partition <n>", "send every record to this partition", intArg("--partition"))
      .option("--content-type <type>", "content type of every value (default text/plain; charset=utf-8); application/json checks each line is JSON", contentTypeArg)
      .option("--acks <acks>", "0 (no wait), 1 (in the log) or all (durable)", acksArg, 1)
      .option("--batch-size <n>", "most lines per request", intArg("--batch-size", 1), 1000)
      .option("--linger <ms>", "send a partial batch this long after its first line", intArg("--linger"), 20),
  ).action(async (topic: string, o: ProduceOptions) => {
    if (o.key !== undefined && o.keyed) throw new TributaryError("BAD_REQUEST", "use either --key or --keyed, not both");
    if (o.separator === "") throw new TributaryError("BAD_REQUEST", "--separator cannot be empty");
    await produceLines(clientFrom(o), topic, o);
  });
}

async function produceLines(client: ApiClient, topic: string, o: ProduceOptions): Promise<void> {
  const producerId = randomUUID();
  let sequence = 0;
  let batch: ProduceBody["records"] = [];
  let batchChars = 0;
  let lingerTimer: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();
  let queued = 0;
  let failure: unknown;
  let badLine: TributaryError | undefined;
  let produced = 0;
  const perPartition = new Map<number, number>();
  const started = performance.now();

  const send = async (records: ProduceBody["records"]) => {
    const body: ProduceBody = { records, acks: o.acks, producerId, sequence: sequence++ };
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await client.produce(topic, body);
        produced += records.length;
        for (const { partition } of result.offsets ?? []) perPartition.set(partition, (perPartition.get(partition) ?? 0) + 1);
        return;
      } catch (err) {
        if (attempt >= RETRIES || !isRetriable(err)) throw err;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  };
  const flush = () => {
    clearTimeout(lingerTimer);
    lingerTimer = undefined;
    if (batch.length === 0 || failure !== undefined) return;
    const records = batch;
    batch = [];
    batchChars = 0;
    queued++;
    chain = chain
      .then(() => (failure === undefined ? send(records) : undefined))
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => queued--);
  };

  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const checkJson = o.contentType !== undefined && isJsonType(o.contentType);
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (failure !== undefined) break;
    const record: LineRecord = { value: line };
    if (o.keyed) {
      const at = line.indexOf(o.separator);
      if (at < 0) {
        badLine = new TributaryError("BAD_REQUEST", `line ${lineNo} has no key separator ${JSON.stringify(o.separator)}; with --keyed every line is key${o.separator === "\t" ? "<TAB>" : o.separator}value`);
        break;
      }
      record.key = line.slice(0, at);
      record.value = line.slice(at + o.separator.length);
    } else if (o.key !== undefined) record.key = o.key;
    if (o.partition !== undefined) record.partition = o.partition;
    if (o.contentType !== undefined) {
      if (checkJson) {
        try {
          JSON.parse(record.value!);
        } catch (err) {
          badLine = new TributaryError("BAD_REQUEST", `line ${lineNo} is not JSON (--content-type ${o.contentType}): ${(err as Error).message}`);
          break;
        }
      }
      record.contentType = o.contentType;
    }
    batch.push(record);
    batchChars += line.length + 32;
    if (batch.length >= o.batchSize || batchChars >= MAX_BATCH_CHARS) flush();
    else lingerTimer ??= setTimeout(flush, o.linger);
    if (queued >= 2) await chain; // bounded read-ahead
  }
  lines.close();
  flush();
  await chain;

  const seconds = (performance.now() - started) / 1000;
  const rate = seconds > 0 ? Math.round(produced / seconds) : produced;
  const partitions = [...perPartition].sort(([a], [b]) => a - b).map(([p, n]) => `${p}:${n}`).join(" ");
  const verb = o.acks === 0 ? "sent (acks=0, unconfirmed)" : "produced";
  process.stderr.write(`${verb} ${produced} record${produced === 1 ? "" : "s"} to ${topic} in ${seconds.toFixed(2)}s (${rate}/s)${partitions ? `; per partition ${partitions}` : ""}\n`);
  if (failure !== undefined) throw failure;
  if (badLine !== undefined) throw badLine;
}
