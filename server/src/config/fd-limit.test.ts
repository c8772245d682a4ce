import { describe, expect, it } from "vitest";
import { effectiveMaxConnections, FD_RESERVE, openFileLimit } from "./fd-limit.ts";

describe("maxConnections below the open-file limit", () => {
  it("keeps a configured maximum that fits, and lowers one that does not, leaving the node its reserve", () => {
    expect(effectiveMaxConnections(500, 20_000)).toEqual({ max: 500, lowered: false });
    expect(effectiveMaxConnections(100_000, 20_000)).toEqual({ max: 20_000 - FD_RESERVE, lowered: true });
    expect(effectiveMaxConnections(100_000, 100)).toEqual({ max: 1, lowered: true });
    expect(effectiveMaxConnections(100_000, null)).toEqual({ max: 100_000, lowered: false });
  });

  it("reads this process's soft open-file limit", () => {
    const limit = openFileLimit();
    expect(limit === null || (Number.isInteger(limit) && limit > 0)).toBe(true);
  });
});
