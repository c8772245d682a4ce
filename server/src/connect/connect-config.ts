/**
 * connectors.yaml: loading and validation. Every problem is an INVALID_CONFIG error that
 * names the connector, the field and what to write instead, e.g.
 * `connectors.yaml: connector "orders-pg" (postgres-sink): "table": expected a string, got 42`.
 *
 *   url: http://127.0.0.1:8080      # the node (the CLI's --url wins)
 *   listen: 127.0.0.1:8083          # this process's status API and /metrics
 *   offsetsTopic: connect-offsets   # compacted topic holding source positions
 *   connectors:
 *     - name: orders-pg
 *       type: postgres-sink
 *       ...
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { TributaryError } from "../errors.ts";

export const CONNECTOR_TYPES = ["postgres-sink", "webhook-sink", "ndjson-sink", "mqtt-sink", "ndjson-source", "mqtt-source"] as const;
export type ConnectorType = (typeof CONNECTOR_TYPES)[number];

const NAME = /^[a-zA-Z0-9._-]{1,200}$/;
const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

/** Settings every sink shares (how the runtime consumes, retries, dead-letters). */
export interface SinkSettings {
  topics: string[];
  /** Most records per `write` (default 500). */
  batchSize: number;
  /** Retries of a failing record before the DLQ (default 5). */
  maxRetries: number;
  /** First retry delay, ms (full jitter, doubling; default 100). */
  retryBackoffMs: number;
  /** Largest retry delay, ms (default 5000). */
  maxRetryBackoffMs: number;
  /** Dead-letter topic, or null to fail the connector instead (default `<name>.dlq`). */
  dlqTopic: string | null;
  /** Where a new group starts: "earliest" (default) or "latest". */
  from: "earliest" | "latest";
}

export interface ConnectorConfig {
  name: string;
  type: ConnectorType;
  /** Sinks only. */
  sink: SinkSettings | null;
  /** Sources only: the topic records go to. */
  topic: string | null;
  /** The connector-specific fields, validated by the connector's factory through `FieldReader`. */
  fields: FieldReader;
}

export interface ConnectConfig {
  url: string | null;
  listen: { host: string; port: number };
  offsetsTopic: string;
  connectors: ConnectorConfig[];
}

/** Reads typed fields of one YAML object, throwing INVALID_CONFIG errors that say where. */
export class FieldReader {
  readonly used = new Set<string>();
  constructor(
    readonly raw: Record<string, unknown>,
    readonly where: string,
  ) {}

  fail(field: string, problem: string): never {
    throw new TributaryError("INVALID_CONFIG", `${this.where}: "${field}": ${problem}`, { field });
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  #get(field: string): unknown {
    this.used.add(field);
    return this.raw[field];
  }

  string(field: string): string;
  string(field: string, fallback: string | null): string | null;
  string(field: string, fallback?: string | null): string | null {
    const v = this.#get(field);
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail(field, "required: give a string");
      return fallback;
    }
    if (typeof v !== "string" || v === "") this.fail(field, `expected a non-empty string, got ${JSON.stringify(v)}`);
    return v;
  }

  int(field: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.#get(field);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) this.fail(field, `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.#get(field);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") this.fail(field, `expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  oneOf<T extends string>(field: string, values: readonly T[], fallback: T): T {
    const v = this.#get(field);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "string" || !values.includes(v as T)) this.fail(field, `expected one of ${values.map((x) => `"${x}"`).join(", ")}, got ${JSON.stringify(v)}`);
    return v as T;
  }

  /** A list of strings; a single string is a list of one. */
  strings(field: string, fallback?: string[]): string[] {
    const v = this.#get(field);
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail(field, "required: give a list of strings");
      return fallback;
    }
    const list = typeof v === "string" ? [v] : v;
    if (!Array.isArray(list) || list.length === 0 || list.some((x) => typeof x !== "string" || x === "")) this.fail(field, `expected a non-empty list of strings, got ${JSON.stringify(v)}`);
    return list as string[];
  }

  /** A map of string → string (e.g. topic → table). */
  stringMap(field: string): Record<string, string> | null {
    const v = this.#get(field);
    if (v === undefined || v === null) return null;
    if (typeof v !== "object" || Array.isArray(v) || Object.values(v).some((x) => typeof x !== "string" || x === "")) this.fail(field, `expected a map of names to strings, got ${JSON.stringify(v)}`);
    return v as Record<string, string>;
  }

  topic(field: string, value: string): string {
    if (!TOPIC.test(value) || value.startsWith("__")) this.fail(field, `"${value}" is not a topic name ([a-zA-Z0-9._-]{1,249}, not starting with "__")`);
    return value;
  }

  /** Fields present in the YAML that nothing read: a typo. */
  checkUnknown(): void {
    const unknown = Object.keys(this.raw).filter((k) => !this.used.has(k));
    if (unknown.length > 0) this.fail(unknown[0]!, `unknown field (known: ${[...this.used].sort().join(", ")})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseListen(raw: string, where: string): { host: string; port: number } {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new TributaryError("INVALID_CONFIG", `${where}: "listen": expected host:port or a port, like 127.0.0.1:8083, got "${raw}"`);
  return { host: m[1] || "127.0.0.1", port };
}

/** Validates a parsed YAML document; `source` names it in messages (the file path). */
export function parseConnectConfig(doc: unknown, source: string): ConnectConfig {
  if (!isObject(doc)) throw new TributaryError("INVALID_CONFIG", `${source}: expected a YAML mapping with a "connectors" list`);
  const top = new FieldReader(doc, source);
  const url = top.string("url", null);
  const listen = parseListen(String(top.raw.listen ?? "127.0.0.1:8083"), source);
  top.used.add("listen");
  const offsetsTopic = top.topic("offsetsTopic", top.string("offsetsTopic", "connect-offsets")!);
  top.used.add("connectors");
  top.checkUnknown();
  const list = doc.connectors;
  if (!Array.isArray(list) || list.length === 0) throw new TributaryError("INVALID_CONFIG", `${source}: "connectors": expected a non-empty list of connectors (each with name and type)`);
  const names = new Set<string>();
  const connectors = list.map((raw, i) => {
    if (!isObject(raw)) throw new TributaryError("INVALID_CONFIG", `${source}: connectors[${i}]: expected a mapping with name, type and the connector's fields`);
    const name = raw.name;
    if (typeof name !== "string" || !NAME.test(name)) throw new TributaryError("INVALID_CONFIG", `${source}: connectors[${i}]: "name": expected [a-zA-Z0-9._-]{1,200}, got ${JSON.stringify(name)}`);
    if (names.has(name)) throw new TributaryError("INVALID_CONFIG", `${source}: connectors[${i}]: "name": "${name}" is used twice; names must be unique (they name the group and the offsets)`);
    names.add(name);
    const type = raw.type;
    if (typeof type !== "string" || !(CONNECTOR_TYPES as readonly string[]).includes(type)) {
      throw new TributaryError("INVALID_CONFIG", `${source}: connector "${name}": "type": expected one of ${CONNECTOR_TYPES.join(", ")}, got ${JSON.stringify(type)}`);
    }
    const fields = new FieldReader(raw, `${source}: connector "${name}" (${type})`);
    fields.used.add("name").add("type");
    const isSink = type.endsWith("-sink");
    let sink: SinkSettings | null = null;
    let topic: string | null = null;
    if (isSink) {
      const dlq = fields.raw.dlq;
      fields.used.add("dlq");
      let dlqTopic: string | null = `${name}.dlq`;
      if (dlq === false) dlqTopic = null;
      else if (typeof dlq === "string") dlqTopic = fields.topic("dlq", dlq);
      else if (dlq !== undefined && dlq !== null && dlq !== true) fields.fail("dlq", `expected true (topic "${name}.dlq"), false or a topic name, got ${JSON.stringify(dlq)}`);
      sink = {
        topics: fields.strings("topics").map((t) => fields.topic("topics", t)),
        batchSize: fields.int("batchSize", 500, 1, 10_000),
        maxRetries: fields.int("maxRetries", 5, 0, 1000),
        retryBackoffMs: fields.int("retryBackoffMs", 100, 1, 600_000),
        maxRetryBackoffMs: fields.int("maxRetryBackoffMs", 5000, 1, 3_600_000),
        dlqTopic,
        from: fields.oneOf("from", ["earliest", "latest"] as const, "earliest"),
      };
    } else {
      topic = fields.topic("topic", fields.string("topic"));
    }
    return { name, type: type as ConnectorType, sink, topic, fields };
  });
  return { url, listen, offsetsTopic, connectors };
}

/** Reads and validates a connectors.yaml file. */
export function loadConnectConfig(path: string): ConnectConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new TributaryError("INVALID_CONFIG", `cannot read the connect config ${path}: ${(err as Error).message}`, { path }, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new TributaryError("INVALID_CONFIG", `${path}: not valid YAML: ${(err as Error).message}`, { path }, { cause: err });
  }
  return parseConnectConfig(doc, path);
}
