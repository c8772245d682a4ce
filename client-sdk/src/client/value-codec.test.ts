import { describe, expect, it } from "vitest";
import { cborCodec, contentTypeOf, decodeByContentType, decodeHeaders, encodeHeaders, encodeKey, jsonCodec, rawCodec, resolveCodec, stringCodec } from "./value-codec.ts";

describe("value codecs", () => {
  it("CBOR round-trips objects, arrays, numbers, strings, bytes, booleans and null", () => {
    const values = [
      { temp: 21.5, unit: "C", tags: ["a", "b"], nested: { ok: true, n: null } },
      [1, -2, 3.25, 2 ** 40, "x"],
      "héllo ✓",
      new Uint8Array([0, 255, 7]),
      true,
      null,
      0,
    ];
    for (const value of values) {
      const back = cborCodec.decode(cborCodec.encode(value));
      if (value instanceof Uint8Array) expect(Array.from(back as Uint8Array)).toEqual(Array.from(value));
      else expect(back).toEqual(value);
    }
  });

  it("CBOR is compact and binary (not JSON text)", () => {
    const bytes = cborCodec.encode({ a: 1 });
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(bytes[0]! >> 5).toBe(5); // major type 5: a map
    expect(bytes.length).toBeLessThan(JSON.stringify({ a: 1 }).length);
  });

  it("JSON (the default) writes objects as application/json, strings as text/plain, bytes as application/octet-stream", () => {
    const value = { a: [1, 2, { b: "ü" }], c: null };
    const bytes = jsonCodec.encode(value);
    expect(new TextDecoder().decode(bytes)).toBe(JSON.stringify(value));
    expect(contentTypeOf(jsonCodec, value)).toBe("application/json");
    expect(jsonCodec.decode(bytes, "application/json")).toEqual(value);
    for (const scalar of [21.5, true, null, [1]]) {
      expect(contentTypeOf(jsonCodec, scalar)).toBe("application/json");
      expect(jsonCodec.decode(jsonCodec.encode(scalar), "application/json")).toEqual(scalar);
    }
    expect(new TextDecoder().decode(jsonCodec.encode("hello"))).toBe("hello"); // not "\"hello\""
    expect(contentTypeOf(jsonCodec, "hello")).toBe("text/plain; charset=utf-8");
    expect(jsonCodec.decode(jsonCodec.encode("héllo"), "text/plain; charset=utf-8")).toBe("héllo");
    const raw = new Uint8Array([0, 255]);
    expect(jsonCodec.encode(raw)).toBe(raw);
    expect(contentTypeOf(jsonCodec, raw)).toBe("application/octet-stream");
    expect(jsonCodec.decode(raw, "application/octet-stream")).toBe(raw);
    expect(() => jsonCodec.encode(10n)).toThrow(TypeError);
    expect(() => jsonCodec.encode(() => 1)).toThrow(/not a JSON value/);
  });

  it("decodes by content type: +json and text/* with parameters, CBOR, unknown types and none as bytes", () => {
    const enc = new TextEncoder();
    expect(decodeByContentType(enc.encode('{"a":1}'), "Application/LD+JSON; charset=utf-8")).toEqual({ a: 1 });
    expect(decodeByContentType(enc.encode("a,b"), "text/csv")).toBe("a,b");
    expect(decodeByContentType(cborCodec.encode({ x: [1] }), "application/cbor")).toEqual({ x: [1] });
    const bytes = enc.encode("hello");
    expect(decodeByContentType(bytes, undefined)).toBe(bytes);
    expect(decodeByContentType(bytes, "image/png")).toBe(bytes);
    expect(() => decodeByContentType(enc.encode("not json"), "application/json")).toThrow(SyntaxError);
  });

  it("CBOR records application/cbor and reads untyped records as CBOR (older SDKs), typed ones by their type", () => {
    expect(contentTypeOf(cborCodec, { a: 1 })).toBe("application/cbor");
    expect(cborCodec.decode(cborCodec.encode({ a: 1 }))).toEqual({ a: 1 });
    expect(cborCodec.decode(new TextEncoder().encode('{"a":2}'), "application/json")).toEqual({ a: 2 });
  });

  it("raw passes bytes through untouched and sends strings as UTF-8", () => {
    const bytes = new Uint8Array([1, 2, 3]);
    expect(rawCodec.encode(bytes)).toBe(bytes);
    expect(rawCodec.decode(bytes)).toBe(bytes);
    expect(Array.from(rawCodec.encode("hi"))).toEqual([104, 105]);
    expect(() => rawCodec.encode(42 as never)).toThrow(TypeError);
  });

  it("string codec round-trips text", () => {
    expect(stringCodec.decode(stringCodec.encode("a ✓ b"))).toBe("a ✓ b");
  });

  it("resolves codec names, defaults to JSON and refuses unknown names", () => {
    expect(resolveCodec(undefined)).toBe(jsonCodec);
    expect(resolveCodec("cbor")).toBe(cborCodec);
    expect(resolveCodec("json")).toBe(jsonCodec);
    expect(resolveCodec(rawCodec)).toBe(rawCodec);
    expect(() => resolveCodec("yaml" as never)).toThrow(/unknown codec/);
  });

  it("encodes string keys and header values as UTF-8 and keeps bytes", () => {
    expect(encodeKey(undefined)).toBeNull();
    expect(encodeKey(null)).toBeNull();
    expect(Array.from(encodeKey("k")!)).toEqual([107]);
    const raw = new Uint8Array([9]);
    expect(encodeKey(raw)).toBe(raw);
    const headers = encodeHeaders({ a: "x", b: raw })!;
    expect(Array.from(headers.a!)).toEqual([120]);
    expect(headers.b).toBe(raw);
    // Read back: UTF-8 as strings, other bytes as bytes.
    const back = decodeHeaders({ ...headers, bin: new Uint8Array([0xc3, 0x28]) });
    expect(back.a).toBe("x");
    expect(back.b).toBe("\t");
    expect(back.bin).toBeInstanceOf(Uint8Array);
    expect(contentTypeOf(rawCodec, raw)).toBeUndefined();
    expect(contentTypeOf(stringCodec, "s")).toBe("text/plain; charset=utf-8");
  });
});
