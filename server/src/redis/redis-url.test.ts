import { describe, expect, it } from "vitest";
import { isTributaryError } from "../errors.ts";
import { parseRedisUrl } from "./redis-url.ts";

describe("parseRedisUrl", () => {
  it("reads standalone, cluster and sentinel URLs with their host lists and query parameters", () => {
    expect(parseRedisUrl("redis://:s3cret@10.0.0.5:6380/2?prefix=prod&replicas=1&waitTimeoutMs=500")).toEqual({
      url: "redis://:s3cret@10.0.0.5:6380/2",
      keyPrefix: "prod",
      replicas: 1,
      waitTimeoutMs: 500,
      maxBatchBytes: undefined,
      password: "s3cret",
    });
    expect(parseRedisUrl("redis+cluster://a:7000,b:7001,[::1]:7002").cluster).toEqual([
      { host: "a", port: 7000 },
      { host: "b", port: 7001 },
      { host: "::1", port: 7002 },
    ]);
    expect(parseRedisUrl("redis+sentinel://s1:26379,s2/main?replicas=1")).toMatchObject({ sentinel: { sentinels: [{ host: "s1", port: 26379 }, { host: "s2", port: 6379 }], name: "main" }, replicas: 1 });
    expect(parseRedisUrl("redis+sentinel://s1:26379").sentinel!.name).toBe("mymaster");
  });

  it.each([
    ["http://localhost:6379", /unsupported scheme http/],
    ["redis://a:1,b:2", /takes one host/],
    ["redis+cluster://a:7000,,b:7001", /"" is not host:port/],
    ["redis+cluster://a:99999", /"a:99999" is not host:port/],
    ["redis://h:6379?replicas=-1", /replicas must be a non-negative integer/],
    ["localhost:6379", /expected <scheme>:\/\//],
  ])("refuses %s with a message saying why", (url, why) => {
    let error: unknown;
    try {
      parseRedisUrl(url);
    } catch (err) {
      error = err;
    }
    expect(isTributaryError(error, "INVALID_CONFIG")).toBe(true);
    expect((error as Error).message).toMatch(why);
  });
});
