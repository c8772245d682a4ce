import { describe, expect, it } from "vitest";
import { cborCodec, encodeHeaders, encodeKey, jsonCodec, rawCodec, resolveCodec, stringCodec } from "./value-codec.ts";

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

  it("JSON round-trips JSON values as UTF-8 text", () => {
    const value = { a: [1, 2, { b: "ü" }], c: null };
    const bytes = jsonCodec.encode(value);
    expect(new TextDecoder().decode(bytes)).toBe(JSON.stringify(value));
    expect(jsonCodec.decode(bytes)).toEqual(value);
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

  it("resolves codec names, defaults to CBOR and refuses unknown names", () => {
    expect(resolveCodec(undefined)).toBe(cborCodec);
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
  });
});
