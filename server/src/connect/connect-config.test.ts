import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConnectConfig } from "./connect-config.ts";
import { createConnector } from "./connector-registry.ts";

function load(text: string) {
  const config = parseConnectConfig(parse(text), "connectors.yaml");
  for (const c of config.connectors) createConnector(c);
  return config;
}

const PG = `connectors:
  - name: orders-pg
    type: postgres-sink
    topics: [orders]
    connection: postgres://u@127.0.0.1/db
`;

describe("connectors.yaml validation names the connector, the field and the fix", () => {
  it("accepts a minimal config with defaults", () => {
    const c = load(PG);
    expect(c.offsetsTopic).toBe("connect-offsets");
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 8083 });
    expect(c.connectors[0]!.sink).toMatchObject({ topics: ["orders"], batchSize: 500, maxRetries: 5, dlqTopic: "orders-pg.dlq", from: "earliest" });
  });

  it.each([
    ["connectors: []", /"connectors": expected a non-empty list/],
    ["connectors:\n  - name: x\n    type: kafka-sink\n", /connector "x": "type": expected one of postgres-sink, webhook-sink/],
    [PG.replace("connection: postgres://u@127.0.0.1/db", ""), /connector "orders-pg" \(postgres-sink\): "connection": required/],
    [PG + "    tabel: x\n", /connector "orders-pg" \(postgres-sink\): "tabel": unknown field/],
    [PG + "    batchSize: 0\n", /"batchSize": expected an integer from 1 to 10000, got 0/],
    [PG + "    mode: columns\n", /"columns": mode "columns" needs a map/],
    [PG + "    tables: { other: t }\n", /"tables": no table for topic "orders"/],
    [PG.replace("[orders]", "[__connect.offsets]"), /"topics": "__connect.offsets" is not a topic name/],
    [PG + PG.replace("connectors:\n", ""), /"name": "orders-pg" is used twice/],
    ["connectors:\n  - name: h\n    type: webhook-sink\n    topics: [a]\n    url: ftp://x\n", /connector "h" \(webhook-sink\): "url": expected an http:\/\/ or https:\/\/ URL/],
    ["connectors:\n  - name: m\n    type: mqtt-source\n    topic: t\n    broker: mqtt://h:1883\n", /connector "m" \(mqtt-source\): "subscribe": required/],
    ["listen: nope\n" + PG, /"listen": expected host:port/],
  ])("refuses %#", (text, message) => {
    expect(() => load(text)).toThrow(message);
  });
});
