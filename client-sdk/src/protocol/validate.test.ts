import { describe, expect, it } from "vitest";
import { FrameValidationError, parseClientFrame } from "./validate.ts";

function codeOf(frame: unknown): string {
  try {
    parseClientFrame(frame);
    return "ok";
  } catch (err) {
    return err instanceof FrameValidationError ? `${err.code} ${err.field ?? ""}` : String(err);
  }
}

describe("commit frame validation", () => {
  it("keeps-each-offsets-epoch-and-accepts-offsets-without-one", () => {
    const frame = {
      op: "commit",
      id: 7,
      sub: 2,
      generation: 8,
      offsets: [
        { topic: "orders", partition: 0, offset: 1520, epoch: "9c02b7e1", metadata: "m" },
        { topic: "orders", partition: 3, offset: 98 },
      ],
    };
    expect(parseClientFrame(frame)).toEqual(frame);
  });

  it("refuses-an-epoch-that-is-empty-not-a-string-or-too-long-naming-the-field", () => {
    const commit = (epoch: unknown) => ({ op: "commit", id: 1, sub: 1, generation: 1, offsets: [{ topic: "t", partition: 0, offset: 1, epoch }] });
    expect(codeOf(commit(""))).toBe("BAD_REQUEST epoch");
    expect(codeOf(commit(5))).toBe("BAD_REQUEST epoch");
    expect(codeOf(commit("e".repeat(129)))).toBe("BAD_REQUEST epoch");
    expect(codeOf(commit("e".repeat(128)))).toBe("ok");
  });
});
