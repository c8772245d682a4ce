import { TributaryError, type ErrorCode } from "../../errors.ts";
import { RC } from "./reason-codes.ts";

/**
 * A client broke the MQTT protocol: the gateway closes that connection only, sending
 * DISCONNECT with `reasonCode` first when the client speaks MQTT 5.
 */
export class MqttProtocolError extends TributaryError {
  readonly reasonCode: number;

  constructor(reasonCode: number, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(codeFor(reasonCode), message, { ...context, reasonCode }, options);
    this.reasonCode = reasonCode;
  }
}

function codeFor(reasonCode: number): ErrorCode {
  switch (reasonCode) {
    case RC.MALFORMED_PACKET:
      return "MALFORMED_FRAME";
    case RC.PACKET_TOO_LARGE:
      return "FRAME_TOO_LARGE";
    case RC.NOT_AUTHORIZED:
      return "UNAUTHORIZED";
    case RC.RECEIVE_MAXIMUM_EXCEEDED:
    case RC.QUOTA_EXCEEDED:
      return "QUEUE_FULL";
    case RC.TOPIC_NAME_INVALID:
    case RC.TOPIC_FILTER_INVALID:
      return "INVALID_TOPIC";
    default:
      return "BAD_REQUEST";
  }
}
