/**
 * Validation of decoded client frames: turns `unknown` (what the codec decoded) into a
 * typed `ClientFrame`, or throws a `FrameValidationError` whose `code` says what is wrong
 * and whose message names the field:
 *
 * - MALFORMED_FRAME: not an object, or no string `op`.
 * - UNKNOWN_OP: `op` is a string but not a client op.
 * - BAD_REQUEST: a field is missing, has the wrong type or is out of range.
 *
 * Never throws anything else, whatever the input (property-tested). Unknown extra fields
 * are ignored (forward compatibility); the returned frame holds only known fields.
 */
import type { ErrorCode } from "../codes.ts";
import {
  CLIENT_OPS,
  type ClientFrame,
  type CommitFrame,
  type CreditFrame,
  type HeartbeatFrame,
  type Headers,
  type HelloFrame,
  type PingFrame,
  type PresenceFrame,
  type PublishFrame,
  type ResetPolicy,
  type RevokedFrame,
  type StartPosition,
  type SubscribeFrame,
  type TopicPartitionRef,
  type UnsubscribeFrame,
} from "./frames.ts";

/** Thrown by `parseClientFrame`. `id`/`sub` are set when the frame carried valid ones, so the reply can name the request. */
export class FrameValidationError extends Error {
  override readonly name = "FrameValidationError";
  readonly code: ErrorCode;
  readonly field: string | undefined;
  id: number | undefined;
  sub: number | undefined;

  constructor(code: ErrorCode, message: string, field?: string) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

type Obj = Record<string, unknown>;

const MAX_ID = Number.MAX_SAFE_INTEGER;

function isObject(x: unknown): x is Obj {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function bad(field: string, expected: string, value: unknown): FrameValidationError {
  return new FrameValidationError("BAD_REQUEST", `field "${field}" must be ${expected}, got ${describe(value)}`, field);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (value instanceof Uint8Array) return "bytes";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return value.length > 40 ? "a string" : JSON.stringify(value);
  if (typeof value === "number") return String(value);
  return `a ${typeof value}`;
}

function uint(frame: Obj, field: string, required: true): number;
function uint(frame: Obj, field: string, required: false): number | undefined;
function uint(frame: Obj, field: string, required: boolean): number | undefined {
  const value = frame[field];
  if (value === undefined && !required) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_ID) {
    throw bad(field, "a non-negative integer", value);
  }
  return value;
}

function str(frame: Obj, field: string, required: true, max?: number): string;
function str(frame: Obj, field: string, required: false, max?: number): string | undefined;
function str(frame: Obj, field: string, required: boolean, max = 65_536): string | undefined {
  const value = frame[field];
  if (value === undefined && !required) return undefined;
  if (typeof value !== "string") throw bad(field, "a string", value);
  if (value.length > max) throw new FrameValidationError("BAD_REQUEST", `field "${field}" is longer than ${max} characters`, field);
  return value;
}

function bytesOrNull(frame: Obj, field: string, required: boolean): Uint8Array | null | undefined {
  const value = frame[field];
  if (value === undefined) {
    if (required) throw bad(field, "bytes or null", value);
    return undefined;
  }
  if (value === null) return null;
  if (!(value instanceof Uint8Array)) throw bad(field, "bytes or null", value);
  return value;
}

function headers(frame: Obj): Headers | undefined {
  const value = frame.headers;
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw bad("headers", "a map of string to bytes", value);
  const out: Headers = Object.create(null) as Headers;
  for (const name of Object.keys(value)) {
    const v = value[name];
    if (!(v instanceof Uint8Array)) throw bad(`headers.${name}`, "bytes", v);
    out[name] = v;
  }
  return out;
}

function hello(f: Obj): HelloFrame {
  const frame: HelloFrame = { op: "hello", id: uint(f, "id", true), protocol: uint(f, "protocol", true) };
  const clientId = str(f, "clientId", false, 256);
  if (clientId !== undefined) frame.clientId = clientId;
  const token = str(f, "token", false);
  if (token !== undefined) frame.token = token;
  const user = str(f, "user", false, 256);
  if (user !== undefined) frame.user = user;
  const features = f.features;
  if (features !== undefined) {
    if (!Array.isArray(features) || features.length > 32 || !features.every((x) => typeof x === "string" && x.length <= 64)) {
      throw bad("features", "an array of at most 32 strings", features);
    }
    frame.features = features as string[];
  }
  return frame;
}

function publish(f: Obj): PublishFrame {
  const frame: PublishFrame = {
    op: "publish",
    id: uint(f, "id", true),
    topic: str(f, "topic", true, 249),
    value: bytesOrNull(f, "value", true) as Uint8Array | null,
  };
  const key = bytesOrNull(f, "key", false);
  if (key !== undefined) frame.key = key;
  const h = headers(f);
  if (h !== undefined) frame.headers = h;
  const partition = uint(f, "partition", false);
  if (partition !== undefined) frame.partition = partition;
  if (f.acks !== undefined) {
    if (f.acks !== 0 && f.acks !== 1 && f.acks !== "all") throw bad("acks", `0, 1 or "all"`, f.acks);
    frame.acks = f.acks;
  }
  const producerId = str(f, "producerId", false, 256);
  const seq = uint(f, "seq", false);
  if ((producerId === undefined) !== (seq === undefined)) {
    throw new FrameValidationError("BAD_REQUEST", `fields "producerId" and "seq" go together`, producerId === undefined ? "producerId" : "seq");
  }
  if (producerId !== undefined) frame.producerId = producerId;
  if (seq !== undefined) frame.seq = seq;
  return frame;
}

function startPosition(value: unknown): StartPosition {
  if (value === "earliest" || value === "latest") return value;
  if (isObject(value)) {
    if (value.timestamp !== undefined) {
      if (typeof value.timestamp !== "number" || !Number.isFinite(value.timestamp)) throw bad("from.timestamp", "a number (ms)", value.timestamp);
      return { timestamp: value.timestamp };
    }
    if (value.offsets !== undefined) {
      const offsets = partitionMap(value.offsets, "from.offsets", (v, field) => {
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_ID) throw bad(field, "a non-negative integer", v);
        return v;
      });
      const out: { offsets: Record<number, number>; epochs?: Record<number, string> } = { offsets };
      if (value.epochs !== undefined && value.epochs !== null) {
        out.epochs = partitionMap(value.epochs, "from.epochs", (v, field) => {
          if (typeof v !== "string") throw bad(field, "a string", v);
          return v;
        });
      }
      return out;
    }
  }
  throw bad("from", `"earliest", "latest", {timestamp} or {offsets, epochs?}`, value);
}

/** A partition-keyed map; CBOR may carry integer keys, JSON carries string keys. */
function partitionMap<T>(value: unknown, field: string, check: (v: unknown, field: string) => T): Record<number, T> {
  if (!isObject(value)) throw bad(field, "a map of partition to value", value);
  const out = Object.create(null) as Record<number, T>;
  for (const k of Object.keys(value)) {
    if (!/^(0|[1-9][0-9]{0,8})$/.test(k)) throw bad(`${field} key`, "a partition number", k);
    out[Number(k)] = check(value[k], `${field}.${k}`);
  }
  return out;
}

function subscribe(f: Obj): SubscribeFrame {
  const frame: SubscribeFrame = {
    op: "subscribe",
    id: uint(f, "id", true),
    sub: uint(f, "sub", true),
    topic: str(f, "topic", true, 4096),
  };
  if (f.from !== undefined) frame.from = startPosition(f.from);
  if (f.reset !== undefined) {
    if (f.reset !== "earliest" && f.reset !== "latest" && f.reset !== "error") throw bad("reset", `"earliest", "latest" or "error"`, f.reset);
    frame.reset = f.reset as ResetPolicy;
  }
  const credit = uint(f, "credit", false);
  if (credit !== undefined) frame.credit = credit;
  if (f.presence !== undefined) {
    if (typeof f.presence !== "boolean") throw bad("presence", "a boolean", f.presence);
    frame.presence = f.presence;
  }
  const group = str(f, "group", false, 249);
  if (group !== undefined) {
    if (group.length === 0) throw bad("group", "a non-empty string", group);
    frame.group = group;
    if (frame.reset === "error") throw bad("reset", `"earliest" or "latest" for a group subscription`, frame.reset);
  }
  if (f.strategies !== undefined) {
    if (!Array.isArray(f.strategies) || f.strategies.length === 0 || f.strategies.length > 16 || !f.strategies.every((x) => typeof x === "string" && x.length > 0 && x.length <= 64)) {
      throw bad("strategies", "a non-empty array of strategy names", f.strategies);
    }
    frame.strategies = [...(f.strategies as string[])];
  }
  const sessionTimeoutMs = uint(f, "sessionTimeoutMs", false);
  if (sessionTimeoutMs !== undefined) frame.sessionTimeoutMs = sessionTimeoutMs;
  const memberId = str(f, "memberId", false, 512);
  if (memberId !== undefined) frame.memberId = memberId;
  if (group === undefined && (frame.strategies !== undefined || sessionTimeoutMs !== undefined || memberId !== undefined)) {
    throw new FrameValidationError("BAD_REQUEST", `fields "strategies", "sessionTimeoutMs" and "memberId" need "group"`, "group");
  }
  return frame;
}

function topicPartitions(value: unknown, field: string): TopicPartitionRef[] {
  if (!Array.isArray(value) || value.length > 100_000) throw bad(field, "an array of {topic, partition}", value);
  return value.map((tp, i) => {
    if (!isObject(tp)) throw bad(`${field}[${i}]`, "{topic, partition}", tp);
    return { topic: str(tp, "topic", true, 249), partition: uint(tp, "partition", true) };
  });
}

function revoked(f: Obj): RevokedFrame {
  return { op: "revoked", sub: uint(f, "sub", true), generation: uint(f, "generation", true), partitions: topicPartitions(f.partitions, "partitions") };
}

function commit(f: Obj): CommitFrame {
  const frame: CommitFrame = { op: "commit", id: uint(f, "id", true), sub: uint(f, "sub", true), generation: uint(f, "generation", true), offsets: [] };
  if (!Array.isArray(f.offsets) || f.offsets.length > 100_000) throw bad("offsets", "an array of {topic, partition, offset}", f.offsets);
  frame.offsets = f.offsets.map((o, i) => {
    if (!isObject(o)) throw bad(`offsets[${i}]`, "{topic, partition, offset}", o);
    const out: CommitFrame["offsets"][number] = { topic: str(o, "topic", true, 249), partition: uint(o, "partition", true), offset: uint(o, "offset", true) };
    const epoch = str(o, "epoch", false, 128);
    if (epoch === "") throw bad("epoch", "a non-empty string", epoch);
    if (epoch !== undefined) out.epoch = epoch;
    const metadata = str(o, "metadata", false, 4096);
    if (metadata !== undefined) out.metadata = metadata;
    return out;
  });
  return frame;
}

function heartbeat(f: Obj): HeartbeatFrame {
  return { op: "heartbeat", sub: uint(f, "sub", true) };
}

function presence(f: Obj): PresenceFrame {
  const frame: PresenceFrame = { op: "presence", id: uint(f, "id", true), topic: str(f, "topic", true, 249) };
  if (f.watch !== undefined) {
    if (typeof f.watch !== "boolean") throw bad("watch", "a boolean", f.watch);
    frame.watch = f.watch;
  }
  return frame;
}

function unsubscribe(f: Obj): UnsubscribeFrame {
  return { op: "unsubscribe", id: uint(f, "id", true), sub: uint(f, "sub", true) };
}

function credit(f: Obj): CreditFrame {
  return { op: "credit", sub: uint(f, "sub", true), credit: uint(f, "credit", true) };
}

function ping(f: Obj): PingFrame {
  const id = uint(f, "id", false);
  return id === undefined ? { op: "ping" } : { op: "ping", id };
}

const PARSERS: Record<(typeof CLIENT_OPS)[number], (f: Obj) => ClientFrame> = {
  hello,
  publish,
  subscribe,
  unsubscribe,
  credit,
  ping,
  revoked,
  commit,
  heartbeat,
  presence,
};

/** Checks a decoded frame's op and every field; see the module comment for the errors. */
export function parseClientFrame(input: unknown): ClientFrame {
  if (!isObject(input)) throw new FrameValidationError("MALFORMED_FRAME", `a frame must be a map/object, got ${describe(input)}`);
  const op = input.op;
  if (typeof op !== "string") throw new FrameValidationError("MALFORMED_FRAME", `field "op" must be a string, got ${describe(op)}`, "op");
  const parser = Object.prototype.hasOwnProperty.call(PARSERS, op) ? PARSERS[op as keyof typeof PARSERS] : undefined;
  if (!parser) {
    const err = new FrameValidationError("UNKNOWN_OP", `unknown op ${describe(op)}; client ops are ${CLIENT_OPS.join(", ")}`, "op");
    attachIds(err, input);
    throw err;
  }
  try {
    return parser(input);
  } catch (err) {
    if (err instanceof FrameValidationError) attachIds(err, input);
    throw err;
  }
}

function attachIds(err: FrameValidationError, input: Obj): void {
  const { id, sub } = input;
  if (typeof id === "number" && Number.isInteger(id) && id >= 0 && id <= MAX_ID) err.id = id;
  if (typeof sub === "number" && Number.isInteger(sub) && sub >= 0 && sub <= MAX_ID) err.sub = sub;
}
