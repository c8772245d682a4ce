import type { AckFrame, WireFormat } from "@tributary/client/protocol";
import { writeCborUint } from "./prepared-message.ts";

// {"op":"ack","id":…,"partition":…,"offset":…} as a CBOR map of 4; keys pre-encoded.
const OP_ACK = [0xa4, 0x62, 0x6f, 0x70, 0x63, 0x61, 0x63, 0x6b]; // map(4) "op" "ack"
const ID = [0x62, 0x69, 0x64]; // "id"
const PARTITION = [0x69, ...new TextEncoder().encode("partition")];
const OFFSET = [0x66, ...new TextEncoder().encode("offset")];
const scratch = new Uint8Array(OP_ACK.length + ID.length + PARTITION.length + OFFSET.length + 3 * 9);

/**
 * Encodes an `ack` without the generic codec (one per publish: the hottest reply). CBOR
 * goes to a scratch buffer, valid until the next call (uWS copies on send). Decodes to the
 * same frame as `encodeFrame`.
 */
export function encodeAck(ack: AckFrame, format: WireFormat): Uint8Array | string {
  if (format === "json") return `{"op":"ack","id":${ack.id},"partition":${ack.partition},"offset":${ack.offset}}`;
  let at = 0;
  scratch.set(OP_ACK, at);
  at += OP_ACK.length;
  scratch.set(ID, at);
  at = writeCborUint(scratch, at + ID.length, ack.id);
  scratch.set(PARTITION, at);
  at = writeCborUint(scratch, at + PARTITION.length, ack.partition);
  scratch.set(OFFSET, at);
  at = writeCborUint(scratch, at + OFFSET.length, ack.offset);
  return scratch.subarray(0, at);
}

// {"op":"acks","acks":[[id, partition, offset], ...]}: map(2) "op" "acks" "acks" array(n).
const OP_ACKS = [0xa2, 0x62, 0x6f, 0x70, 0x64, 0x61, 0x63, 0x6b, 0x73, 0x64, 0x61, 0x63, 0x6b, 0x73];
let acksScratch = new Uint8Array(4096);

/** Encodes `acks` as one `acks` frame (feature "acks"); CBOR in a scratch buffer valid until the next call. */
export function encodeAcks(acks: readonly AckFrame[], format: WireFormat): Uint8Array | string {
  if (format === "json") return `{"op":"acks","acks":[${acks.map((a) => `[${a.id},${a.partition},${a.offset}]`).join(",")}]}`;
  const need = OP_ACKS.length + 9 + acks.length * (1 + 3 * 9);
  if (acksScratch.length < need) acksScratch = new Uint8Array(need * 2);
  const out = acksScratch;
  out.set(OP_ACKS, 0);
  // array(n): major type 4, same length encoding as an unsigned integer
  let at = writeCborUint(out, OP_ACKS.length, acks.length);
  out[OP_ACKS.length] = out[OP_ACKS.length]! | 0x80;
  for (const a of acks) {
    out[at++] = 0x83;
    at = writeCborUint(out, at, a.id);
    at = writeCborUint(out, at, a.partition);
    at = writeCborUint(out, at, a.offset);
  }
  return out.subarray(0, at);
}
