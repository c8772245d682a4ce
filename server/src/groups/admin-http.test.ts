import { Command, CommanderError } from "commander";
import uWS from "uWebSockets.js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Broker } from "../broker/broker.ts";
import { registerGroupsCommand } from "../cli/groups-command.ts";
import { exitCodeOf } from "../cli/exit-codes.ts";
import { DEFAULT_CONFIG } from "../config/config.ts";
import { isTributaryError } from "../errors.ts";
import { registerGroupRoutes } from "../gateway/http/groups-routes.ts";
import { createLogger } from "../logger.ts";
import { GroupCoordinator } from "./group-coordinator.ts";
import { openTempEngine, RecordingChannel, type TempEngine } from "../../../test/helpers/group-harness.ts";

let temp: TempEngine;
let coordinator: GroupCoordinator;
let listen: uWS.us_listen_socket;
let url: string;

beforeEach(async () => {
  temp = await openTempEngine();
  await temp.engine.createTopic("orders", { partitions: 3 });
  for (let p = 0; p < 3; p++) await temp.engine.append("orders", p, Array.from({ length: 4 }, () => ({ key: null, value: new Uint8Array([1]) })));
  coordinator = new GroupCoordinator({ engine: temp.engine });
  const app = uWS.App();
  const broker = new Broker(temp.engine, { autoCreateTopics: false, topicDefaults: {}, maxRecordBytes: 1 << 20 });
  registerGroupRoutes(app, { broker, config: DEFAULT_CONFIG, nodeId: "n1", log: createLogger("error", () => undefined) }, coordinator);
  await new Promise<void>((resolve, reject) =>
    app.listen("127.0.0.1", 0, (token) => {
      if (!token) return reject(new Error("listen failed"));
      listen = token;
      url = `http://127.0.0.1:${uWS.us_socket_local_port(token)}`;
      resolve();
    }),
  );
});

afterEach(async () => {
  uWS.us_listen_socket_close(listen);
  coordinator.close();
  await temp.cleanup();
});

async function cli(...args: string[]): Promise<{ out: string; exit: number }> {
  const program = new Command("tributary").exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerGroupsCommand(program);
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  try {
    await program.parseAsync(["node", "tributary", "groups", ...args, "--url", url]);
    return { out, exit: 0 };
  } catch (err) {
    if (err instanceof CommanderError) return { out, exit: 2 };
    if (isTributaryError(err)) return { out: err.code, exit: exitCodeOf(err.code) };
    throw err;
  } finally {
    spy.mockRestore();
  }
}

describe("consumer group admin over HTTP and the CLI", () => {
  it("lists and describes a group with its members, committed offsets and lag", async () => {
    const channel = new RecordingChannel();
    const { memberId } = await coordinator.join("billing", { clientId: "svc", node: "n1", topics: ["orders"], channel });
    await coordinator.settled("billing");
    await coordinator.commit("billing", { memberId, generation: channel.generation, offsets: [{ topic: "orders", partition: 1, offset: 1 }] });

    const list = await (await fetch(`${url}/groups`)).json();
    expect(list).toEqual({ groups: [{ group: "billing", state: "Stable", generation: 1, members: 1 }] });
    const res = await fetch(`${url}/groups/billing`);
    expect(res.status).toBe(200);
    const d = await res.json();
    expect(d.members[0]).toMatchObject({ memberId, clientId: "svc", node: "n1" });
    expect(d.partitions[1]).toMatchObject({ topic: "orders", partition: 1, committedOffset: 1, endOffset: 4, lag: 3, owner: memberId });

    const missing = await fetch(`${url}/groups/nobody`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe("UNKNOWN_GROUP");

    const listed = await cli("list");
    expect(listed.exit).toBe(0);
    expect(listed.out).toMatch(/billing\s+Stable\s+1\s+1/);
    const described = await cli("describe", "billing");
    expect(described.exit).toBe(0);
    expect(described.out).toMatch(/orders\s+1\s+\S+\s+1\s+4\s+3/);
  });

  it("refuses reset-offsets with 409 GROUP_NOT_EMPTY while members are active and resets once the group is empty", async () => {
    const channel = new RecordingChannel();
    const { memberId } = await coordinator.join("billing", { clientId: "svc", node: "n1", topics: ["orders"], channel });
    await coordinator.settled("billing");
    const refused = await fetch(`${url}/groups/billing/reset-offsets`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ topic: "orders", to: "earliest" }) });
    expect(refused.status).toBe(409);
    expect((await refused.json()).error.code).toBe("GROUP_NOT_EMPTY");
    expect(await cli("reset-offsets", "billing", "--topic", "orders", "--to", "latest")).toEqual({ out: "GROUP_NOT_EMPTY", exit: 4 });

    await coordinator.leave("billing", memberId);
    await coordinator.settled("billing");
    const ok = await fetch(`${url}/groups/billing/reset-offsets`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ topic: "orders", to: { offset: 2 } }) });
    expect(ok.status).toBe(200);
    expect((await ok.json()).partitions).toEqual([0, 1, 2].map((partition) => ({ partition, previous: null, offset: 2 })));
    const viaCli = await cli("reset-offsets", "billing", "--topic", "orders", "--to", "latest", "--partition", "0");
    expect(viaCli.exit).toBe(0);
    expect(viaCli.out).toMatch(/0\s+2\s+4/);
    expect((await temp.engine.fetchOffset("billing", "orders", 0))!.offset).toBe(4);
    expect((await cli("reset-offsets", "billing", "--topic", "orders", "--to", "2024-05-01T00:00:00Z")).exit).toBe(0);
  });

  it("answers malformed reset requests with 400 and bad CLI targets with usage exit code 2", async () => {
    const bad = await fetch(`${url}/groups/billing/reset-offsets`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ topic: "orders", to: "yesterday" }) });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.code).toBe("BAD_REQUEST");
    const notJson = await fetch(`${url}/groups/billing/reset-offsets`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(notJson.status).toBe(400);
    expect((await cli("reset-offsets", "billing", "--topic", "orders", "--to", "yesterday")).exit).toBe(2);
    expect((await cli("reset-offsets", "billing", "--to", "latest")).exit).toBe(2);
  });
});
