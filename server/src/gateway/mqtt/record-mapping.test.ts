import { describe, expect, it } from "vitest";
import { headersForPublish, mqttTopicForRecord, OutgoingMessage } from "./record-mapping.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const key = (k: string) => enc.encode(k);

describe("record key → MQTT topic (docs/mqtt.md, Keys and MQTT topics)", () => {
  it("keeps keys that already are MQTT topics of the log topic and puts other keys under it", () => {
    const table: Array<[string, Uint8Array | null, string]> = [
      ["sensor-data", key("sensor-data/d42/temp"), "sensor-data/d42/temp"], // MQTT-published
      ["sensor-data", key("sensor-data"), "sensor-data"],
      ["sensor-data", key("d42"), "sensor-data/d42"], // SDK / HTTP key
      ["sensor-data", key("d42/temp"), "sensor-data/d42/temp"],
      ["sensor-data", key("sensor-data-eu"), "sensor-data/sensor-data-eu"], // a prefix, not a level
      ["sensor-data", key("/x"), "sensor-data//x"],
      ["sensor-data", key("ünï côde"), "sensor-data/ünï côde"],
      ["sensor-data", null, "sensor-data"],
      ["sensor-data", new Uint8Array(0), "sensor-data"],
      ["sensor-data", key("a+b"), "sensor-data"], // cannot be a topic name: the level alone
      ["sensor-data", key("#"), "sensor-data"],
      ["sensor-data", key("a\u0000b"), "sensor-data"],
      ["sensor-data", new Uint8Array([0xff, 0xfe]), "sensor-data"],
      ["$SYS", key("$SYS/broker"), "$SYS/broker"],
    ];
    for (const [level, k, topic] of table) expect([level, k && dec.decode(k), mqttTopicForRecord(level, level, k)]).toEqual([level, k && dec.decode(k), topic]);
  });
});

describe("content-type ↔ MQTT 5 Content Type and Payload Format Indicator", () => {
  it("a publish's Content Type is the record's content-type; a Payload Format Indicator alone means text/plain", () => {
    const typed = headersForPublish({ topic: "t/a", payload: enc.encode("{}"), qos: 1, retain: false, properties: { contentType: "application/json" } }, null);
    expect(dec.decode(typed["content-type"])).toBe("application/json");
    expect(typed["mqtt.content-type"]).toBeUndefined();
    const text = headersForPublish({ topic: "t/a", payload: enc.encode("hi"), qos: 0, retain: false, properties: { payloadFormatIndicator: true } }, null);
    expect(dec.decode(text["content-type"])).toBe("text/plain; charset=utf-8");
    expect(dec.decode(text["mqtt.payload-format"])).toBe("1");
    // MQTT 3.1.1 (no properties): no content type.
    expect(headersForPublish({ topic: "t/a", payload: enc.encode("hi"), qos: 0, retain: false }, null)["content-type"]).toBeUndefined();
  });

  it("a record's content-type is the Content Type, with the Payload Format Indicator for text that is valid UTF-8", () => {
    const props = (value: Uint8Array, headers: Record<string, Uint8Array>) => new OutgoingMessage(0, "t", value, headers, Date.now()).properties;
    expect(props(enc.encode('{"a":1}'), { "content-type": enc.encode("application/json") })).toEqual({ contentType: "application/json", payloadFormatIndicator: true });
    expect(props(enc.encode("hi"), { "content-type": enc.encode("text/plain; charset=utf-8") })).toEqual({ contentType: "text/plain; charset=utf-8", payloadFormatIndicator: true });
    // Bytes, or text that is not valid UTF-8 (or holds control characters strict receivers refuse): no indicator.
    expect(props(new Uint8Array([1, 2]), { "content-type": enc.encode("application/octet-stream") })).toEqual({ contentType: "application/octet-stream" });
    expect(props(new Uint8Array([0xff]), { "content-type": enc.encode("text/plain") })).toEqual({ contentType: "text/plain" });
    expect(props(enc.encode('{\n"a":1}'), { "content-type": enc.encode("application/json") })).toEqual({ contentType: "application/json" });
    // content-type is never also a User Property; the pre-convention header still maps.
    expect(props(enc.encode("x"), { "content-type": enc.encode("text/csv"), "mqtt.content-type": enc.encode("old") })).toEqual({ contentType: "text/csv", payloadFormatIndicator: true });
    expect(props(enc.encode("x"), { "mqtt.content-type": enc.encode("text/plain") })).toEqual({ contentType: "text/plain", payloadFormatIndicator: true });
    expect(props(enc.encode("x"), {})).toBeUndefined();
  });
});
