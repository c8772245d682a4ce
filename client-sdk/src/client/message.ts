import type { MessageFrame } from "../protocol/index.ts";
import type { Message } from "./types.ts";
import { bytesToString, CONTENT_TYPE_HEADER, decodeHeaders } from "./value-codec.ts";

const EMPTY_HEADERS: Record<string, Uint8Array> = Object.freeze({}) as Record<string, Uint8Array>;

/** A delivered record (see `Message`): header text is decoded on first use. */
export class ReceivedMessage<T = unknown> implements Message<T> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: string | null;
  readonly keyBytes: Uint8Array | null;
  readonly value: T;
  readonly bytes: Uint8Array | null;
  readonly contentType: string | null;
  readonly headerBytes: Record<string, Uint8Array>;
  #headers: Record<string, string | Uint8Array> | undefined;

  constructor(frame: MessageFrame, value: T, contentType: string | null) {
    this.topic = frame.topic;
    this.partition = frame.partition;
    this.offset = frame.offset;
    this.timestamp = frame.timestamp;
    this.keyBytes = frame.key ?? null;
    this.key = this.keyBytes ? bytesToString(this.keyBytes) : null;
    this.value = value;
    this.bytes = frame.value ?? null;
    this.contentType = contentType;
    this.headerBytes = frame.headers ?? EMPTY_HEADERS;
  }

  get headers(): Record<string, string | Uint8Array> {
    return (this.#headers ??= decodeHeaders(this.headerBytes));
  }

  text(): string {
    return this.bytes ? bytesToString(this.bytes) : "";
  }

  json<J = unknown>(): J {
    return (this.bytes ? JSON.parse(this.text()) : null) as J;
  }

  /** Plain-data form (console.log, JSON.stringify, structured clone). */
  toJSON(): Record<string, unknown> {
    return { topic: this.topic, partition: this.partition, offset: this.offset, timestamp: this.timestamp, key: this.key, contentType: this.contentType, value: this.value, headers: this.headers };
  }
}

/** The `content-type` header of a record as text, or null. */
export function contentTypeOfFrame(frame: MessageFrame): string | null {
  const bytes = frame.headers?.[CONTENT_TYPE_HEADER];
  return bytes ? bytesToString(bytes) : null;
}
