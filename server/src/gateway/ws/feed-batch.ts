import { encodeFrame, type BatchRecord, type MessagesFrame, type WireFormat } from "@tributary/client/protocol";
import type { LogRecord } from "../../log/log-engine.ts";
import { plainBytes, PreparedMessage } from "./prepared-message.ts";

/** Most bytes (estimated) of one feed `messages` frame; a larger batch is split into several. */
const MAX_FRAME_BYTES = 64 * 1024;
const RECORD_OVERHEAD = 48;

/**
 * One batch of a partition feed (records contiguous in offset order), in the two shapes
 * delivery needs: per-record `message` frames patched per subscription (PreparedMessage,
 * for members on the JS path), and `messages` frames addressed to the feed, encoded once
 * per wire format and published to every attached member at once (uWS pub/sub).
 */
export class FeedBatch {
  readonly firstOffset: number;
  readonly #feedId: number;
  readonly #topic: string;
  readonly #partition: number;
  readonly #records: LogRecord[];
  #cbor: Uint8Array[] | null = null;
  #cborBytes = 0;
  #json: Uint8Array[] | null = null;
  #jsonBytes = 0;
  #messages: PreparedMessage[] | null = null;

  constructor(feedId: number, topic: string, partition: number, records: LogRecord[]) {
    this.#feedId = feedId;
    this.#topic = topic;
    this.#partition = partition;
    this.#records = records;
    this.firstOffset = records[0]!.offset;
  }

  /** Per-record frames for members on the JS path (made on first use: attached members never need them). */
  get messages(): PreparedMessage[] {
    return (this.#messages ??= this.#records.map((r) => new PreparedMessage(this.#topic, this.#partition, r)));
  }

  get length(): number {
    return this.#records.length;
  }

  /** Next offset after the batch. */
  get endOffset(): number {
    return this.firstOffset + this.#records.length;
  }

  /** The batch's feed frames in `format` (encoded on first use). */
  frames(format: WireFormat): Uint8Array[] {
    if (format === "cbor") return (this.#cbor ??= this.#encode("cbor"));
    return (this.#json ??= this.#encode("json"));
  }

  /** Bytes the feed frames in `format` put in a socket's buffer. */
  bytes(format: WireFormat): number {
    this.frames(format);
    return format === "cbor" ? this.#cborBytes : this.#jsonBytes;
  }

  #encode(format: WireFormat): Uint8Array[] {
    const out: Uint8Array[] = [];
    let total = 0;
    let chunk: BatchRecord[] = [];
    let estimate = 0;
    const flush = () => {
      const frame: MessagesFrame = { op: "messages", feed: this.#feedId, topic: this.#topic, partition: this.#partition, records: chunk };
      const encoded = encodeFrame(frame, format);
      const bytes = typeof encoded === "string" ? Buffer.from(encoded) : encoded;
      out.push(bytes);
      total += bytes.length + 14; // + WebSocket frame header
      chunk = [];
      estimate = 0;
    };
    for (const r of this.#records) {
      let record: BatchRecord = { offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value };
      const hasHeaders = Object.keys(r.headers).length > 0;
      if (hasHeaders) record.headers = r.headers;
      if (format === "json") record = plainBytes(record);
      const size = RECORD_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
      if (chunk.length > 0 && estimate + size > MAX_FRAME_BYTES) flush();
      chunk.push(record);
      estimate += size;
    }
    if (chunk.length > 0) flush();
    if (format === "cbor") this.#cborBytes = total;
    else this.#jsonBytes = total;
    return out;
  }
}
