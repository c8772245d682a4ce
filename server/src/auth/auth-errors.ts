/**
 * Auth failures as TributaryErrors, and what each protocol answers for them (the table
 * gateways follow; docs/security.md "Errors on the wire"):
 *
 * | failure                                  | code          | HTTP | WS                          | MQTT 5                          | MQTT 3.1.1 |
 * |------------------------------------------|---------------|------|-----------------------------|---------------------------------|------------|
 * | bad/unknown credentials, bad token       | UNAUTHORIZED  | 401  | error frame, close 4501     | CONNACK 0x86                    | CONNACK 0x04 |
 * | no credentials, anonymous not allowed    | UNAUTHORIZED  | 401  | error frame, close 4501     | CONNACK 0x87                    | CONNACK 0x05 |
 * | token expired at connect                 | TOKEN_EXPIRED | 401  | error frame, close          | CONNACK 0x86                    | CONNACK 0x04 |
 * | token expired while connected            | TOKEN_EXPIRED | —    | disconnect frame, close     | DISCONNECT 0xA0 (max connect time) | close   |
 * | revoked by a reload while connected      | UNAUTHORIZED  | —    | disconnect frame, close 4501| DISCONNECT 0x87                 | close      |
 * | operation not allowed                    | FORBIDDEN     | 403  | error frame (request / sub) | PUBACK/PUBREC 0x87, SUBACK 0x87 | SUBACK 0x80; PUBLISH: close |
 *
 * HTTP 401 answers carry `WWW-Authenticate: Bearer`.
 */
import { TributaryError, type ErrorCode } from "../errors.ts";
import { describeIdentity, type Identity } from "./identity.ts";

export type ForbiddenAction = "publish" | "subscribe" | "produce" | "consume" | "join_group" | "presence" | "manage_topic" | "admin";

/** The FORBIDDEN error for `identity` doing `action` on `target` (topic, filter or group), with both in `context`. */
export function forbidden(identity: Identity, action: ForbiddenAction, target: string | null = null): TributaryError {
  const on = target === null ? "" : ` on "${target}"`;
  return new TributaryError("FORBIDDEN", `${describeIdentity(identity)} may not ${action.replace("_", " ")}${on}`, { action, target });
}

/** MQTT reason codes for auth outcomes (MQTT 5.0 §2.4, 3.1.1 §3.2.2.3). */
export const MQTT_AUTH_REASON = {
  v5: { badCredentials: 0x86, notAuthorized: 0x87, maximumConnectTime: 0xa0 },
  v311: { badCredentials: 0x04, notAuthorized: 0x05, subscribeFailure: 0x80 },
} as const;

/** The CONNACK return/reason code for a failed authentication (`err` from AuthService.authenticate*). */
export function connackCodeFor(err: TributaryError, protocolVersion: 3 | 4 | 5): number {
  const missing = err.code === "UNAUTHORIZED" && err.context.reason === "missing";
  if (protocolVersion === 5) return missing ? MQTT_AUTH_REASON.v5.notAuthorized : MQTT_AUTH_REASON.v5.badCredentials;
  return missing ? MQTT_AUTH_REASON.v311.notAuthorized : MQTT_AUTH_REASON.v311.badCredentials;
}

/** The MQTT 5 DISCONNECT reason for closing a connection whose identity stopped being valid (AuthService.validate). */
export function disconnectReasonFor(code: ErrorCode): number {
  return code === "TOKEN_EXPIRED" ? MQTT_AUTH_REASON.v5.maximumConnectTime : MQTT_AUTH_REASON.v5.notAuthorized;
}
