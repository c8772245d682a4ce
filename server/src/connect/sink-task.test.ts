/**
 * SinkTask's pipeline against a real node (in-process, SDK over WebSocket) and a sink whose
 * writes the test ends by hand, two at a time (`concurrentWrites: 2`, as the PostgreSQL
 * sink): the group's committed offset never passes a record that is not written, whatever
 * order the writes end in.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSdkTestNode, type SdkTestNode } from "../../../test/helpers/sdk-node.ts";
import { waitFor } from "../../../test/helpers/wait.ts";
import { createLogger } from "../logger.ts";
import { FieldReader, type ConnectorConfig } from "./connect-config.ts";
import { ConnectMetrics } from "./connect-metrics.ts";
import { SinkError, type SinkConnector, type SinkRecord } from "./connector.ts";
import { NodeApi } from "./node-api.ts";
import { SinkTask } from "./sink-task.ts";

interface PendingWrite {
  records: SinkRecord[];
  done: boolean;
  end(): void;
  fail(err: Error): void;
}

/** Every `write` waits until the test ends it. */
class HandSink implements SinkConnector {
  readonly concurrentWrites = 2;
  readonly writes: PendingWrite[] = [];
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  write(records: SinkRecord[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const w: PendingWrite = { records: [...records], done: false, end: () => ((w.done = true), resolve()), fail: (err) => ((w.done = true), reject(err)) };
      this.writes.push(w);
    });
  }

  /** Ends every write still waiting (before stopping the task, which waits for them). */
  endAll(): void {
    for (const w of this.writes) if (!w.done) w.end();
  }
}

let node: SdkTestNode;
let api: NodeApi;

beforeAll(async () => {
  node = await startSdkTestNode();
  api = new NodeApi(`http://127.0.0.1:${node.port}`);
});
afterAll(async () => {
  await node?.close();
});

async function topicWith(name: string, records: number): Promise<void> {
  await api.createTopic({ name, partitions: 1 });
  await api.produce(
    name,
    Array.from({ length: records }, (_, i) => ({ key: `k${i}`, value: String(i) })),
  );
}

function sinkTask(name: string, topic: string, sink: SinkConnector, onFatal: (err: Error) => void = () => {}): SinkTask {
  const config: ConnectorConfig = {
    name,
    type: "webhook-sink",
    sink: { topics: [topic], batchSize: 10, maxRetries: 0, retryBackoffMs: 1, maxRetryBackoffMs: 1, dlqTopic: null, from: "earliest" },
    topic: null,
    fields: new FieldReader({}, name),
  };
  return new SinkTask(config, sink, undefined, {
    wsUrl: node.url,
    token: undefined,
    api,
    metrics: new ConnectMetrics(),
    logger: createLogger("error"),
    onFatal,
    onError: () => {},
  });
}

/** The group's committed offset of partition 0, or null (none; a group that left without committing is unknown to the node). */
async function committed(group: string): Promise<number | null> {
  try {
    const g = (await api.describeGroup(group)) as { partitions?: Array<{ committedOffset: number | null }> };
    return g.partitions?.[0]?.committedOffset ?? null;
  } catch (err) {
    if ((err as { code?: string }).code === "UNKNOWN_GROUP") return null;
    throw err;
  }
}

describe("SinkTask with two writes at once", () => {
  it("commits-in-batch-order-when-the-later-write-ends-first", async () => {
    await topicWith("hand-1", 30);
    const sink = new HandSink();
    const task = sinkTask("hand-1", "hand-1", sink);
    await task.start();
    try {
      await waitFor(() => sink.writes.length === 2, { what: "two writes at once" });
      const [first, second] = sink.writes;
      expect(first!.records[0]!.offset).toBe(0);
      expect(second!.records[0]!.offset).toBe(first!.records.at(-1)!.offset + 1);
      second!.end();
      // A slot is free: the next batch goes while the first write still runs; nothing is committed past it.
      await waitFor(() => sink.writes.length === 3, { what: "a third write once the second ended" });
      expect(await committed("connect.hand-1")).toBeNull();
      first!.end();
      await waitFor(async () => (await committed("connect.hand-1")) === second!.records.at(-1)!.offset + 1, { what: "the first two batches committed" });
      // The rest, each write ended as it comes.
      for (let i = 2; ; i++) {
        await waitFor(async () => sink.writes.length > i || (await committed("connect.hand-1")) === 30, { what: `write ${i + 1} or everything committed` });
        if (sink.writes.length <= i) break;
        sink.writes[i]!.end();
      }
      expect(sink.writes.flatMap((w) => w.records.map((r) => r.offset))).toEqual(Array.from({ length: 30 }, (_, i) => i));
    } finally {
      sink.endAll();
      await task.stop();
    }
  });

  it("commits-nothing-after-a-batch-that-could-not-be-written-even-when-a-later-one-was", async () => {
    await topicWith("hand-2", 30);
    const sink = new HandSink();
    const fatal: Error[] = [];
    const task = sinkTask("hand-2", "hand-2", sink, (err) => fatal.push(err));
    await task.start();
    try {
      await waitFor(() => sink.writes.length === 2, { what: "two writes at once" });
      const [first, second] = sink.writes;
      second!.end();
      await waitFor(() => sink.writes.length === 3, { what: "a third write once the second ended" });
      sink.writes[2]!.end();
      // The first batch is refused; written one record at a time, its first record fails for good (no DLQ).
      first!.fail(new SinkError("records", "refused", false));
      const alone = () => sink.writes.find((w) => w !== first && w.records.length === 1 && w.records[0]!.offset === 0);
      await waitFor(() => alone() !== undefined, { what: "record 0 written on its own" });
      alone()!.fail(new SinkError("records", "record 0 refused", false));
      await waitFor(() => fatal.length === 1, { what: "the task to report it cannot go on" });
      expect(fatal[0]!.message).toContain("hand-2/0@0 failed 1 times and there is no DLQ");
    } finally {
      sink.endAll();
      await task.stop();
    }
    // stop() waited for the commits: none passed record 0, although later batches were written.
    expect(await committed("connect.hand-2")).toBeNull();
  });
});
