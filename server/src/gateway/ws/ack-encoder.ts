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
