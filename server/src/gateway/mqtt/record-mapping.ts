import type { IPublishPacket } from "mqtt-packet";
import type { LogRecord, RecordHeaders } from "../../log/log-engine.ts";
import { levelForLogTopic } from "./topic-mapping.ts";
import { isValidTopicName } from "../../broker/topic-filter.ts";

/**
 * PUBLISH ↔ log record (docs/mqtt.md, "Records"). Value = payload bytes; key = the full
 * MQTT topic (UTF-8). Headers carry what must round-trip:
 *
 * | header               | meaning                                                    |
 * |----------------------|------------------------------------------------------------|
 * | `mqtt.qos`           | QoS the message was published with ("0" / "1" / "2")        |
 * | `mqtt.retain`        | "1" when published with RETAIN                              |
 * | `mqtt.client-id`     | publishing client, when it has a No Local subscription (MQTT 5) |
 * | `content-type`       | Content Type (the record convention, docs/semantics.md); Payload Format Indicator 1 without a Content Type → `text/plain; charset=utf-8` |
 * | `mqtt.payload-format`| Payload Format Indicator ("1" = UTF-8)                      |
 * | `mqtt.response-topic`| Response Topic                                              |
 * | `mqtt.correlation-data` | Correlation Data (raw bytes)                             |
 * | `mqtt.message-expiry`| Message Expiry Interval, seconds, counted from the record timestamp |
 * | `mqtt.user-properties` | JSON `[[name, value], ...]` when names repeat or start with `mqtt.` |
 * | any other name       | one User Property (value UTF-8), both ways                  |
 *
 * To MQTT 5 subscribers, a record's `content-type` (from any protocol; `mqtt.content-type`
 * of records stored before the convention too) is the Content Type, and the Payload Format
 * Indicator is 1 when the MQTT publisher set it, or when the content type is text (`text/*`,
 * JSON types) and the payload is valid UTF-8. MQTT 3.1.1 carries neither: its publishes
 * have no content type.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();
const QOS_BYTES = [enc.encode("0"), enc.encode("1"), enc.encode("2")] as const;
const ONE = enc.encode("1");
/** The record header of the content-type convention (docs/semantics.md). */
export const CONTENT_TYPE_HEADER = "content-type";
const TEXT_PLAIN = enc.encode("text/plain; charset=utf-8");

export type QoS = 0 | 1 | 2;

export interface PublishInput {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  properties?: IPublishPacket["properties"];
}

/** The headers of a plain publish (no properties, no retain, no origin): shared, never mutated. */
const PLAIN_HEADERS: readonly RecordHeaders[] = [0, 1, 2].map((q) => Object.freeze({ "mqtt.qos": QOS_BYTES[q as QoS] }));

/**
 * Headers for a record published over MQTT. `clientIdBytes` (cached by the connection) is
 * given only when the publisher has a No Local subscription: only then can a subscription
 * need to recognise its own messages (a new subscription starts at the end of the log, so
 * it never sees messages published before it existed).
 */
export function headersForPublish(msg: PublishInput, clientIdBytes: Uint8Array | null): RecordHeaders {
  if (!msg.retain && !clientIdBytes && !msg.properties) return PLAIN_HEADERS[msg.qos]!;
  const headers: RecordHeaders = { "mqtt.qos": QOS_BYTES[msg.qos] };
  if (msg.retain) headers["mqtt.retain"] = ONE;
  if (clientIdBytes) headers["mqtt.client-id"] = clientIdBytes;
  const p = msg.properties;
  if (p) {
    if (p.contentType !== undefined) headers[CONTENT_TYPE_HEADER] = enc.encode(p.contentType);
    if (p.payloadFormatIndicator) {
      headers["mqtt.payload-format"] = ONE;
      if (p.contentType === undefined) headers[CONTENT_TYPE_HEADER] = TEXT_PLAIN;
    }
    if (p.responseTopic !== undefined) headers["mqtt.response-topic"] = enc.encode(p.responseTopic);
    if (p.correlationData !== undefined) headers["mqtt.correlation-data"] = p.correlationData;
    if (p.messageExpiryInterval !== undefined) headers["mqtt.message-expiry"] = enc.encode(String(p.messageExpiryInterval));
    if (p.userProperties) {
      const pairs: [string, string][] = [];
      let plain = true;
      for (const [name, value] of Object.entries(p.userProperties)) {
        const values = Array.isArray(value) ? value : [value];
        if (values.length !== 1 || name.startsWith("mqtt.") || name in headers) plain = false;
        for (const v of values) pairs.push([name, String(v)]);
      }
      if (plain) for (const [name, value] of pairs) headers[name] = enc.encode(value);
      else headers["mqtt.user-properties"] = enc.encode(JSON.stringify(pairs));
    }
  }
  return headers;
}

/** A log record prepared for MQTT delivery: decoded once, shared by every subscriber. */
export class OutgoingMessage {
  readonly offset: number;
  readonly topic: string;
  readonly payload: Uint8Array;
  /** QoS it was published with; null when not published over MQTT (delivered at the subscription's QoS). */
  readonly publishedQos: QoS | null;
  readonly retain: boolean;
  readonly #originBytes: Uint8Array | undefined;
  #origin: string | null | undefined;
  /** Absolute expiry (ms since epoch) or null. */
  readonly expiresAt: number | null;
  readonly #headers: RecordHeaders;
  #properties: IPublishPacket["properties"] | undefined | null = null;
  /**
   * Properties of this record MQTT cannot carry, left out of `properties` (known once
   * `properties` has been read): each delivery without them counts in
   * `tributary_mqtt_dropped_properties_total`.
   */
  droppedProperties = 0;
  /** Last encoded PUBLISH (one variant: protocol version, qos, retain, dup); packet id patched per send. */
  encodedVariant = -1;
  encoded: Buffer | null = null;

  /** Client id of the MQTT publisher (No Local), decoded on first use. */
  get origin(): string | null {
    if (this.#origin === undefined) this.#origin = this.#originBytes ? dec.decode(this.#originBytes) : null;
    return this.#origin;
  }

  constructor(offset: number, topic: string, payload: Uint8Array, headers: RecordHeaders, timestamp: number) {
    this.offset = offset;
    this.topic = topic;
    this.payload = payload; // encodePacket copies it with Uint8Array.set: no Buffer wrapper needed
    this.#headers = headers;
    const q = headers["mqtt.qos"];
    this.publishedQos = q && q.length === 1 && q[0]! >= 0x30 && q[0]! <= 0x32 ? ((q[0]! - 0x30) as QoS) : null;
    this.retain = headers["mqtt.retain"] !== undefined;
    this.#originBytes = headers["mqtt.client-id"];
    const expiry = headers["mqtt.message-expiry"];
    this.expiresAt = expiry ? timestamp + Number(dec.decode(expiry)) * 1000 : null;
  }

  /**
   * MQTT 5 PUBLISH properties (without the remaining expiry, added per send). A header MQTT
   * cannot carry as a string (`mqttStringProblem`: not UTF-8, U+0000, a control character or
   * non-character, over 65,535 bytes) is left out and counted in `droppedProperties`: a client
   * may close the connection on such a string, and a persistent session would then receive
   * the same record again on every reconnect, never reaching the records after it.
   */
  get properties(): IPublishPacket["properties"] | undefined {
    if (this.#properties !== null) return this.#properties;
    const h = this.#headers;
    const props: NonNullable<IPublishPacket["properties"]> = {};
    let any = false;
    let user: Record<string, string | string[]> | undefined;
    let dropped = 0;
    let utf8Payload = false;
    /** The header's value as an MQTT string, or null (counted) when MQTT cannot carry it. */
    const text = (value: Uint8Array): string | null => {
      const decoded = mqttString(value);
      if (decoded === null) dropped++;
      return decoded;
    };
    const addUser = (name: string, value: string) => {
      if (!isMqttString(name) || !isMqttString(value)) {
        dropped++;
        return;
      }
      user ??= {};
      const prev = user[name];
      user[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    };
    for (const name in h) {
      const value = h[name]!;
      switch (name) {
        case "mqtt.qos":
        case "mqtt.retain":
        case "mqtt.client-id":
        case "mqtt.message-expiry":
          break;
        case CONTENT_TYPE_HEADER:
        case "mqtt.content-type": {
          // `mqtt.content-type`: how records stored before the content-type convention carry it.
          if (name === "mqtt.content-type" && h[CONTENT_TYPE_HEADER] !== undefined) break;
          const contentType = text(value);
          if (contentType === null) break;
          props.contentType = contentType;
          any = true;
          if (isTextContentType(contentType) && mqttString(this.payload, Infinity) !== null) utf8Payload = true;
          break;
        }
        case "mqtt.payload-format":
          utf8Payload = true;
          break;
        case "mqtt.response-topic": {
          const responseTopic = text(value);
          if (responseTopic === null) break;
          if (!isValidTopicName(responseTopic)) {
            dropped++;
            break;
          }
          props.responseTopic = responseTopic;
          any = true;
          break;
        }
        case "mqtt.correlation-data":
          props.correlationData = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
          any = true;
          break;
        case "mqtt.user-properties":
          try {
            for (const [k, v] of JSON.parse(dec.decode(value)) as [string, string][]) addUser(String(k), String(v));
          } catch {
            // not ours: ignore
          }
          break;
        default:
          if (!name.startsWith("mqtt.")) {
            const v = text(value);
            if (v !== null) addUser(name, v);
          }
      }
    }
    if (utf8Payload) {
      props.payloadFormatIndicator = true;
      any = true;
    }
    if (user) {
      props.userProperties = user;
      any = true;
    }
    this.droppedProperties = dropped;
    this.#properties = any ? props : undefined;
    return this.#properties;
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
/** Longest MQTT UTF-8 string, in bytes (a two-byte length prefix). */
const MQTT_STRING_MAX_BYTES = 65_535;

/**
 * Code points an MQTT string must not (U+0000; surrogates cannot occur in a decoded string)
 * or should not contain (control characters U+0001..U+001F, U+007F..U+009F and
 * non-characters), on which a receiver may close the connection (MQTT 5 §1.5.4; Mosquitto's
 * clients do).
 */
// eslint-disable-next-line no-control-regex
const FORBIDDEN_IN_MQTT_STRING = /[\u0000-\u001f\u007f-\u009f\ufdd0-\ufdef\ufffe\uffff]|[\ud83f\ud87f\ud8bf\ud8ff\ud93f\ud97f\ud9bf\ud9ff\uda3f\uda7f\udabf\udaff\udb3f\udb7f\udbbf\udbff][\udffe\udfff]/;

/** A JavaScript string an MQTT peer accepts as a UTF-8 string (name or value of a property). */
export function isMqttString(value: string): boolean {
  if (FORBIDDEN_IN_MQTT_STRING.test(value)) return false;
  // Lone surrogates become U+FFFD when encoded: a string from a decoded header has none.
  return value.length * 3 <= MQTT_STRING_MAX_BYTES || Buffer.byteLength(value) <= MQTT_STRING_MAX_BYTES;
}

/** Text content types (`text/*`, `application/json`, `+json`): their payloads are UTF-8 character data. */
export function isTextContentType(contentType: string): boolean {
  const semi = contentType.indexOf(";");
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return type.startsWith("text/") || type === "application/json" || type.endsWith("+json");
}

/**
 * `bytes` decoded as an MQTT UTF-8 string, or null when MQTT cannot carry it (not UTF-8,
 * forbidden code points, longer than `maxBytes`: 65,535 for strings; payloads with a Payload
 * Format Indicator pass Infinity).
 */
export function mqttString(bytes: Uint8Array, maxBytes = MQTT_STRING_MAX_BYTES): string | null {
  if (bytes.length > maxBytes) return null;
  let value: string;
  try {
    value = strictUtf8.decode(bytes);
  } catch {
    return null;
  }
  return FORBIDDEN_IN_MQTT_STRING.test(value) ? null : value;
}

const keyCache = new Map<string, string>();

/**
 * The MQTT topic a record is delivered on (docs/mqtt.md, "Keys and MQTT topics"):
 * - a key that already is an MQTT topic of this log topic (first level = the topic's level:
 *   what MQTT publishers write) → the key as is: `sensor-data/d42/temp`;
 * - any other UTF-8 key `k` → `<level>/k`: an SDK or HTTP record of `sensor-data` with key
 *   `d42` is delivered on `sensor-data/d42`, key `d42/temp` on `sensor-data/d42/temp`;
 * - a null or empty key, or one that cannot make an MQTT topic name (`+` or `#`, NUL, not
 *   UTF-8, forbidden code points, over 65,535 bytes) → the level alone: `sensor-data`
 *   (seen by `sensor-data`, `sensor-data/#` and `#`).
 */
let lastKey: Uint8Array | null = null;
let lastLevel = "";
let lastTopic = "";

export function mqttTopicForRecord(logTopic: string, level: string, key: Uint8Array | null): string {
  if (key === null || key.length === 0) return level;
  // Devices publish to the same topics over and over: reuse the last decode.
  if (lastKey !== null && level === lastLevel && Buffer.compare(key, lastKey) === 0) return lastTopic;
  const topic = mapKey(level, key);
  lastKey = key;
  lastLevel = level;
  lastTopic = topic;
  return topic;
}

function mapKey(level: string, key: Uint8Array): string {
  const text = mqttString(key, Infinity);
  if (text === null) return level;
  const ofLevel = text.length >= level.length && text.startsWith(level) && (text.length === level.length || text.charCodeAt(level.length) === 0x2f);
  const topic = ofLevel ? text : `${level}/${text}`;
  if (!isValidTopicName(topic) || Buffer.byteLength(topic) > MQTT_STRING_MAX_BYTES) return level;
  return topic;
}

/** MQTT first level for a log topic (cached), or null when MQTT cannot see this topic. */
export function levelFor(logTopic: string): string | null {
  let level = keyCache.get(logTopic);
  if (level === undefined) {
    const l = levelForLogTopic(logTopic);
    if (l === null) return null;
    level = l;
    keyCache.set(logTopic, level);
  }
  return level;
}

export function toOutgoing(logTopic: string, level: string, record: LogRecord): OutgoingMessage {
  return new OutgoingMessage(
    record.offset,
    mqttTopicForRecord(logTopic, level, record.key),
    record.value ?? new Uint8Array(0),
    record.headers,
    record.timestamp,
  );
}
