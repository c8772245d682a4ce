import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSdkTestNode, type SdkTestNode } from "../../../test/helpers/sdk-node.ts";
import { NodeApi } from "./node-api.ts";

/** Counts topic creations (an identity without admin may not create: it must not be asked to when the topic exists). */
class CountingApi extends NodeApi {
  creates = 0;
  override createTopic(body: Record<string, unknown>): Promise<unknown> {
    this.creates++;
    return super.createTopic(body);
  }
}

let node: SdkTestNode;
beforeAll(async () => {
  node = await startSdkTestNode();
});
afterAll(async () => {
  await node?.close();
});

describe("NodeApi.ensureTopic", () => {
  it("creates-a-missing-topic-with-its-config-and-only-describes-an-existing-one", async () => {
    const api = new CountingApi(`http://127.0.0.1:${node.port}`);
    await api.ensureTopic({ name: "ensure-offsets", partitions: 1, cleanupPolicy: "compact", retentionMs: null, retentionBytes: null });
    expect(api.creates).toBe(1);
    expect(await api.describeTopic("ensure-offsets")).toMatchObject({ partitions: 1, cleanupPolicy: "compact", retentionMs: null });
    await api.ensureTopic({ name: "ensure-offsets", partitions: 1, cleanupPolicy: "compact" });
    expect(api.creates).toBe(1);
  });
});
