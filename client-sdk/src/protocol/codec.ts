/**
 * Frame codec for both subprotocols. CBOR (cbor-x) carries bytes natively. JSON carries
 * byte fields (`key`, `value`, header values) as base64 strings; which fields are bytes
 * is fixed by the protocol, so no tagging is needed.
 */
import { Decoder, Encoder } from "cbor-x";
import type { Frame, Headers } from "./frames.ts";

export type WireFormat = "cbor" | "json";

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const cborDecoder = new Decoder({ useRecords: false, mapsAsObjects: true });

export function encodeFrame(frame: Frame, format: WireFormat): Uint8Array | string {
  if (format === "cbor") return cbor.encode(frame);
  // Read the raw property: JSON.stringify calls Buffer#toJSON before the replacer sees it.
  return JSON.stringify(frame, function (this: Record<string, unknown>, key, value) {
    const raw = key === "" ? value : this[key];
    return raw instanceof Uint8Array ? toBase64(raw) : value;
  });
}

/** Decodes one frame; throws on undecodable input (callers map that to MALFORMED_FRAME). */
export function decodeFrame(data: Uint8Array | ArrayBuffer | string, format: WireFormat): unknown {
  if (format === "cbor") {
    if (typeof data === "string") throw new Error("text frame on the binary subprotocol");
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    return cborDecoder.decode(bytes);
  }
  const text = typeof data === "string" ? data : new TextDecoder("utf-8", { fatal: true }).decode(data);
  const frame = JSON.parse(text) as Record<string, unknown>;
  if (frame && typeof frame === "object") {
    bytesFromBase64(frame);
    // `messages` frames: each record carries key/value/headers.
    if (Array.isArray(frame.records)) for (const r of frame.records) if (r && typeof r === "object") bytesFromBase64(r as Record<string, unknown>);
  }
  return frame;
}

function bytesFromBase64(obj: Record<string, unknown>): void {
  for (const field of ["key", "value"]) {
    if (typeof obj[field] === "string") obj[field] = fromBase64(obj[field] as string);
  }
  const headers = obj.headers as Record<string, unknown> | undefined;
  if (headers && typeof headers === "object") {
    for (const name of Object.keys(headers)) {
      if (typeof headers[name] === "string") headers[name] = fromBase64(headers[name] as string);
    }
  }
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export type { Headers };
