import { encodeFrame, type BatchRecord, type MessagesFrame, type WireFormat } from "@tributary/client/protocol";
import type { BatchView, DeliveryBatch } from "../../broker/delivery/delivery-batch.ts";
import type { LogRecord } from "../../log/log-engine.ts";
import { encodeMessagesCbor, type MessagesAddress } from "./messages-encoder.ts";
import { plainBytes, PreparedMessage } from "./prepared-message.ts";

/** Most bytes (estimated) of one `messages` frame; a larger batch is split into several. */
export const MAX_FRAME_BYTES = 64 * 1024;
const RECORD_OVERHEAD = 48;

/** A record's estimated size in a `messages` frame (for MAX_FRAME_BYTES). */
export const frameBytesOf = (r: LogRecord): number => RECORD_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);

/**
 * A DeliveryBatch in the two shapes WebSocket delivery needs, made once per batch and
 * shared by every subscription of the partition: per-record `message` frames patched per
 * subscription (PreparedMessage, for the JS path), and `messages` frames addressed to the
 * feed, encoded once per wire format and published to every attached member at once (uWS
 * pub/sub; feed batches only).
 */
export class FeedBatch {
  readonly firstOffset: number;
  readonly #feedId: number;
  readonly #topic: string;
  readonly #partition: number;
  readonly #records: readonly LogRecord[];
  #cbor: Uint8Array[] | null = null;
  #cborBytes = 0;
  #json: Uint8Array[] | null = null;
  #jsonBytes = 0;
  #messages: PreparedMessage[] | null = null;

  constructor(batch: DeliveryBatch) {
    this.#feedId = batch.feedId ?? 0;
    this.#topic = batch.topic;
    this.#partition = batch.partition;
    this.#records = batch.records;
    this.firstOffset = batch.firstOffset;
  }

  /** Per-record frames for members on the JS path (made on first use: attached members never need them). */
  get messages(): PreparedMessage[] {
    return (this.#messages ??= this.#records.map((r) => new PreparedMessage(this.#topic, this.#partition, r)));
  }

  get length(): number {
    return this.#records.length;
  }

  /** The batch's records (for `messages` frames addressed to one subscription). */
  get records(): readonly LogRecord[] {
    return this.#records;
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
    const records = this.#records;
    let start = 0;
    let estimate = 0;
    for (let i = 0; i < records.length; i++) {
      const size = frameBytesOf(records[i]!);
      if (i > start && estimate + size > MAX_FRAME_BYTES) {
        out.push(this.#frame(format, start, i));
        start = i;
        estimate = 0;
      }
      estimate += size;
    }
    if (start < records.length) out.push(this.#frame(format, start, records.length));
    let total = 0;
    for (const bytes of out) total += bytes.length + 14; // + WebSocket frame header
    if (format === "cbor") this.#cborBytes = total;
    else this.#jsonBytes = total;
    return out;
  }

  /** `records[from..to)` as one feed `messages` frame. */
  #frame(format: WireFormat, from: number, to: number): Uint8Array {
    return encodeMessages("feed", this.#feedId, this.#topic, this.#partition, this.#records, from, to, format);
  }
}

/**
 * `records[from..to)` as one `messages` frame addressed to a feed or to one subscription
 * (`address`, `id`): CBOR through encodeMessagesCbor, anything else (JSON, or a record it
 * does not write) through the generic codec.
 */
export function encodeMessages(address: MessagesAddress, id: number, topic: string, partition: number, records: readonly LogRecord[], from: number, to: number, format: WireFormat): Uint8Array {
  const fast = format === "cbor" ? encodeMessagesCbor(id, topic, partition, records, from, to, address) : null;
  if (fast !== null) return fast;
  const chunk: BatchRecord[] = [];
  for (let i = from; i < to; i++) {
    const r = records[i]!;
    let record: BatchRecord = { offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value };
    if (Object.keys(r.headers).length > 0) record.headers = r.headers;
    if (format === "json") record = plainBytes(record);
    chunk.push(record);
  }
  const frame: MessagesFrame = { op: "messages", [address]: id, topic, partition, records: chunk };
  const encoded = encodeFrame(frame, format);
  return typeof encoded === "string" ? Buffer.from(encoded) : encoded;
}

/** The WebSocket shape of a delivery batch (see DeliveryBatch.view). */
export const WS_BATCH: BatchView<FeedBatch> = { make: (batch) => new FeedBatch(batch) };
