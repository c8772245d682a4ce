import { describe, expect, it, onTestFinished, vi } from "vitest";
import { SendBudget } from "./send-budget.ts";

describe("SendBudget", () => {
  it("pauses past the limit, resumes below half of it, and wakes whoever waits", async () => {
    let buffered = 0;
    const slow: string[] = [];
    const budget = new SendBudget({ maxBufferedBytes: 1000, slowConsumerGraceMs: 60_000 }, () => buffered, (reason) => slow.push(reason));
    expect(budget.check()).toBe(true);
    buffered = 1001;
    expect(budget.check()).toBe(false);
    expect(budget.paused).toBe(true);
    let woken = false;
    const waiting = budget.whenOpen().then(() => (woken = true));
    buffered = 600; // drained some, still above half
    budget.drained();
    expect(budget.paused).toBe(true);
    buffered = 500;
    budget.drained();
    expect(budget.paused).toBe(false);
    await waiting;
    expect(woken).toBe(true);
    expect(slow).toEqual([]);
    budget.close();
  });

  it("a connection that stays paused for the grace period is reported slow, with the limit and the grace in the reason", async () => {
    let buffered = 5000;
    let reported!: (reason: string) => void;
    const slow = new Promise<string>((resolve) => (reported = resolve));
    const budget = new SendBudget({ maxBufferedBytes: 1000, slowConsumerGraceMs: 20 }, () => buffered, (reason) => reported(reason));
    budget.check();
    expect(await slow).toBe("send buffer over 1000 bytes for 20 ms");
    budget.close();
  });

  it("with polling, a paused budget resumes by itself once the transport drained, and is never reported slow", async () => {
    let buffered = 5000;
    const slow: string[] = [];
    const budget = new SendBudget({ maxBufferedBytes: 1000, slowConsumerGraceMs: 5000 }, () => buffered, (reason) => slow.push(reason), 5);
    budget.check();
    const resumed = budget.whenOpen();
    buffered = 0; // drained, but no drain event
    await resumed;
    expect(budget.paused).toBe(false);
    expect(slow).toEqual([]);
    budget.close();
  });

  it("close wakes waiters and stops the grace timer", async () => {
    // fake timers: "the grace timer never fires" is checked by running every due timer, not by sleeping past it
    vi.useFakeTimers();
    onTestFinished(() => void vi.useRealTimers());
    const slow: string[] = [];
    const budget = new SendBudget({ maxBufferedBytes: 1, slowConsumerGraceMs: 10 }, () => 10, (reason) => slow.push(reason));
    budget.check();
    const waiting = budget.whenOpen();
    budget.close();
    await waiting;
    expect(budget.open).toBe(false);
    expect(budget.check()).toBe(false);
    // the grace timer was cleared: a later drain or timer cannot report a closed connection
    vi.advanceTimersByTime(30); // past the 10 ms grace: a timer still armed would fire here
    expect(vi.getTimerCount()).toBe(0);
    expect(slow).toEqual([]);
  });
});
