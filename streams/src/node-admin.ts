/**
 * The HTTP side of the node the library needs (docs/http-api.md): describe and create
 * topics, and read a partition from an offset (changelog restore, outbox checks). The
 * SDK's WebSocket protocol carries the records in and out; this carries only admin and
 * bounded reads.
 */
import { StreamsError } from "./errors.ts";

export interface TopicInfo {
  name: string;
  partitions: number;
  cleanupPolicy: string;
  partitionInfo: Array<{ partition: number; earliestOffset: number; endOffset: number; epoch: string }>;
}

/** A record as the HTTP read returns it (UTF-8 keys, values and header values as text). */
export interface HttpRecord {
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | { base64: string } | null;
  headers: Record<string, string | { base64: string }>;
}

interface ReadReply {
  endOffset: number;
  nextOffset: number;
  records: HttpRecord[];
}

const PAGE = 10_000;
/** A produce request carries at most this many records, and about this many bytes (the node's body limit is 2 MB by default). */
const PRODUCE_MAX_RECORDS = 2000;
const PRODUCE_MAX_BYTES = 512 * 1024;
/** How long a produce request is retried (same producer id and sequence) before it fails, ms (default). */
const PRODUCE_RETRY_MS = 5_000;

/** A record to produce: the value as text (JSON text with a JSON content type, or a string), null for a tombstone. */
export interface ProduceRecord {
  key: string | null;
  value: string | null;
  contentType?: string;
  headers?: Record<string, string>;
  partition?: number;
}

export class NodeAdmin {
  readonly baseUrl: string;
  readonly #token: (() => string | undefined | Promise<string | undefined>) | undefined;

  /** How long a produce request is retried before it fails, ms. */
  readonly produceRetryMs: number;
  readonly #abort = new AbortController();

  constructor(baseUrl: string, token?: () => string | undefined | Promise<string | undefined>, produceRetryMs = PRODUCE_RETRY_MS) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#token = token;
    this.produceRetryMs = produceRetryMs;
  }

  /** Aborts requests in flight and refuses new ones (a stopped application must not write any more). */
  close(): void {
    this.#abort.abort();
  }

  /** The HTTP base URL of a node from its SDK URL (ws → http, wss → https). */
  static fromSdkUrl(url: string): string {
    const u = new URL(url);
    u.protocol = u.protocol === "wss:" ? "https:" : "http:";
    return u.origin;
  }

  async describeTopic(topic: string): Promise<TopicInfo | null> {
    const res = await this.#request("GET", `/topics/${encodeURIComponent(topic)}`);
    if (res.status === 404) return null;
    return (await this.#json(res, `describe topic "${topic}"`)) as TopicInfo;
  }

  /** Creates the topic, or checks the existing one has `partitions` partitions and `cleanupPolicy`. */
  async ensureTopic(topic: string, partitions: number, cleanupPolicy: "compact" | "delete"): Promise<TopicInfo> {
    const existing = await this.describeTopic(topic);
    if (!existing) {
      const res = await this.#request("POST", "/topics", { name: topic, partitions, cleanupPolicy });
      if (res.status !== 409) await this.#json(res, `create topic "${topic}"`);
      const created = await this.describeTopic(topic);
      if (!created) throw new StreamsError("TOPIC_MISMATCH", `topic "${topic}" was created but cannot be described`, { topic });
      return this.#check(created, partitions, cleanupPolicy);
    }
    return this.#check(existing, partitions, cleanupPolicy);
  }

  #check(info: TopicInfo, partitions: number, cleanupPolicy: string): TopicInfo {
    if (info.partitions !== partitions) {
      throw new StreamsError("TOPIC_MISMATCH", `topic "${info.name}" has ${info.partitions} partitions, the application needs ${partitions} (as many as its input)`, { topic: info.name, partitions: info.partitions, expected: partitions });
    }
    if (!info.cleanupPolicy.split(",").includes(cleanupPolicy)) {
      throw new StreamsError("TOPIC_MISMATCH", `topic "${info.name}" has cleanup policy "${info.cleanupPolicy}", the application needs "${cleanupPolicy}"`, { topic: info.name });
    }
    return info;
  }

  /** Reads `[from, end)` of a partition, `end` being its end offset when the read starts; pages of 10,000. */
  async *read(topic: string, partition: number, from: number): AsyncGenerator<HttpRecord[]> {
    let offset = from;
    let end = Infinity;
    while (offset < end) {
      const res = await this.#request("GET", `/topics/${encodeURIComponent(topic)}/partitions/${partition}/records?offset=${offset}&max=${PAGE}`);
      const reply = (await this.#json(res, `read ${topic}/${partition} at ${offset}`)) as ReadReply;
      if (end === Infinity) end = reply.endOffset;
      const records = reply.records.filter((r) => r.offset < end);
      if (records.length > 0) yield records;
      if (reply.nextOffset <= offset) break;
      offset = reply.nextOffset;
    }
  }

  /**
   * Produces `records` to `topic` in request-sized batches, one after the other (so their
   * order holds), each with `producerId` and a fresh sequence: a batch whose reply was lost
   * is sent again with the same sequence and written once (the node's idempotent produce).
   * Retriable failures are retried with backoff for `produceRetryMs`. Returns where each record landed.
   */
  async produce(topic: string, records: ProduceRecord[], producerId: string, nextSequence: () => number): Promise<Array<{ partition: number; offset: number }>> {
    const out: Array<{ partition: number; offset: number }> = [];
    let i = 0;
    while (i < records.length) {
      let bytes = 0;
      let j = i;
      while (j < records.length && j - i < PRODUCE_MAX_RECORDS && bytes < PRODUCE_MAX_BYTES) {
        bytes += (records[j]!.value?.length ?? 0) + (records[j]!.key?.length ?? 0) + 200;
        j++;
      }
      const body = { records: records.slice(i, j), producerId, sequence: nextSequence() };
      const reply = (await this.#produceOnce(topic, body)) as { offsets: Array<{ partition: number; offset: number }> };
      out.push(...reply.offsets);
      i = j;
    }
    return out;
  }

  async #produceOnce(topic: string, body: unknown): Promise<unknown> {
    const deadline = Date.now() + this.produceRetryMs;
    for (let attempt = 0; ; attempt++) {
      let err: StreamsError;
      try {
        const res = await this.#request("POST", `/topics/${encodeURIComponent(topic)}/records`, body);
        return await this.#json(res, `produce to "${topic}"`);
      } catch (e) {
        if (!(e instanceof StreamsError) || !e.retriable) throw e;
        err = e;
      }
      if (this.#abort.signal.aborted) throw new StreamsError("CLOSED", `produce to "${topic}" stopped: the application stopped`, { topic }, { cause: err });
      if (Date.now() >= deadline) throw new StreamsError("PRODUCE", `produce to "${topic}" failed for ${this.produceRetryMs} ms: ${err.message}`, { topic }, { cause: err });
      // Full-jitter backoff, 50 ms doubling to 1 s.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(1000, 50 * 2 ** attempt)));
    }
  }

  async #request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    const token = await this.#token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      return await fetch(`${this.baseUrl}${path}`, { method, headers, signal: this.#abort.signal, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (cause) {
      throw new StreamsError("HTTP", `${method} ${this.baseUrl}${path} failed: ${String((cause as Error)?.message ?? cause)}`, { method, path }, { cause });
    }
  }

  async #json(res: Response, what: string): Promise<unknown> {
    const text = await res.text();
    if (!res.ok) {
      let code = "";
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? "";
      } catch {
        // not JSON: the text itself is reported below
      }
      throw new StreamsError("HTTP", `${what}: HTTP ${res.status} ${code} ${text.slice(0, 300)}`, { status: res.status, code }, { retriable: res.status >= 500 });
    }
    return JSON.parse(text);
  }
}

/** A header value of an HTTP record as text (base64 ones decoded as UTF-8). */
export function headerText(value: string | { base64: string } | undefined): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : Buffer.from(value.base64, "base64").toString("utf8");
}

/** The value of an HTTP record parsed as JSON (the streams library writes its records as JSON). */
export function jsonValue(record: HttpRecord): unknown {
  if (record.value === null) return null;
  const text = typeof record.value === "string" ? record.value : Buffer.from(record.value.base64, "base64").toString("utf8");
  return JSON.parse(text);
}
