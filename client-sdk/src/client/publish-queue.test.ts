import { describe, expect, it } from "vitest";
import { isTributaryClientError } from "./errors.ts";
import { PublishQueue } from "./publish-queue.ts";

const frame = (topic = "t") => ({ op: "publish" as const, topic, value: new Uint8Array([1]), producerId: "p" });
const noop = () => {};

describe("PublishQueue", () => {
  it("rejects with a retriable QUEUE_FULL error once maxQueued publishes wait", () => {
    const queue = new PublishQueue(3, 10);
    for (let i = 0; i < 3; i++) queue.add(frame(), noop, noop);
    let caught: unknown;
    try {
      queue.add(frame(), noop, noop);
    } catch (err) {
      caught = err;
    }
    expect(isTributaryClientError(caught, "QUEUE_FULL")).toBe(true);
    expect((caught as { retriable: boolean }).retriable).toBe(true);
    expect((caught as Error).name).toBe("TributaryClientError");
    expect(queue.queuedCount).toBe(3);
  });

  it("frees room as publishes are sent, and limits the in-flight window", () => {
    const queue = new PublishQueue(2, 3);
    queue.add(frame(), noop, noop);
    queue.add(frame(), noop, noop);
    const sent = queue.takeSendable();
    expect(sent.map((e) => e.seq)).toEqual([0, 1]);
    sent.forEach((e, i) => queue.markInflight(100 + i, e));
    queue.add(frame(), noop, noop);
    queue.add(frame(), noop, noop);
    expect(queue.takeSendable().map((e) => e.seq)).toEqual([2]); // window of 3: only one more
  });

  it("puts unacknowledged publishes back in front, in seq order, keeping their seq", () => {
    const queue = new PublishQueue(10, 10);
    for (let i = 0; i < 4; i++) queue.add(frame(), noop, noop);
    const sent = queue.takeSendable().slice(0, 3);
    // ids out of order on purpose
    queue.markInflight(7, sent[2]!);
    queue.markInflight(5, sent[0]!);
    queue.markInflight(6, sent[1]!);
    expect(queue.settle(5)?.seq).toBe(0);
    queue.requeueInflight();
    expect(queue.inflightCount).toBe(0);
    const again = queue.takeSendable();
    expect(again.map((e) => e.seq)).toEqual([1, 2]);
    expect(again.map((e) => e.frame.seq)).toEqual([1, 2]);
  });

  it("keeps every accepted publish across a requeue even beyond maxQueued (only new ones are refused)", () => {
    const queue = new PublishQueue(2, 5);
    queue.add(frame(), noop, noop);
    queue.add(frame(), noop, noop);
    queue.takeSendable().forEach((e, i) => queue.markInflight(i, e));
    queue.add(frame(), noop, noop);
    queue.add(frame(), noop, noop);
    queue.requeueInflight();
    expect(queue.queuedCount).toBe(4);
    expect(() => queue.add(frame(), noop, noop)).toThrow(/full/);
  });

  it("rejects everything on rejectAll", async () => {
    const queue = new PublishQueue(5, 5);
    const results: string[] = [];
    queue.add(frame(), noop, (err) => results.push(err.code));
    queue.markInflight(1, queue.takeSendable()[0]!);
    for (let i = 0; i < 2; i++) queue.add(frame(), noop, (err) => results.push(err.code));
    const { TributaryClientError } = await import("./errors.ts");
    queue.rejectAll(new TributaryClientError("UNAVAILABLE", "closed"));
    expect(results).toEqual(["UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE"]);
    expect(queue.queuedCount + queue.inflightCount).toBe(0);
  });
});
