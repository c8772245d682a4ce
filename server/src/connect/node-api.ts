/**
 * The connect process's HTTP door to a node (docs/http-api.md): create topics, produce with
 * the idempotent producer, read a partition. Errors are TributaryErrors with the server's
 * code, UNAVAILABLE when the node cannot be reached (retriable).
 */
import { isErrorCode } from "@tributary/client/codes";
import { isTributaryError, TributaryError } from "../errors.ts";

export type BytesJson = string | { base64: string } | null;

export interface ProduceRecordJson {
  key?: BytesJson;
  value: BytesJson;
  contentType?: string;
  headers?: Record<string, BytesJson>;
  partition?: number;
  timestamp?: number;
}

export interface ReadRecordJson {
  offset: number;
  timestamp: number;
  key: BytesJson;
  value: BytesJson;
  headers: Record<string, BytesJson>;
}

export class NodeApi {
  constructor(
    readonly baseUrl: string,
    readonly token?: string,
  ) {}

  createTopic(body: Record<string, unknown>): Promise<unknown> {
    return this.#call("POST", "/topics", body);
  }

  /**
   * Creates topic `body.name` unless it exists. Asks first: creating needs `admin`, using the
   * topic does not, so an identity without admin starts once an admin created its topics.
   */
  async ensureTopic(body: { name: string } & Record<string, unknown>): Promise<void> {
    try {
      await this.describeTopic(body.name);
      return;
    } catch (err) {
      if (!isTributaryError(err, "UNKNOWN_TOPIC")) throw err;
    }
    try {
      await this.createTopic(body);
    } catch (err) {
      if (!isTributaryError(err, "TOPIC_EXISTS")) throw err; // created meanwhile
    }
  }

  describeTopic(topic: string): Promise<{ partitions: number; partitionInfo: Array<{ partition: number; earliestOffset: number; endOffset: number }> }> {
    return this.#call("GET", `/topics/${encodeURIComponent(topic)}`);
  }

  produce(topic: string, records: ProduceRecordJson[], idempotence?: { producerId: string; sequence: number }): Promise<{ offsets: Array<{ partition: number; offset: number }> }> {
    return this.#call("POST", `/topics/${encodeURIComponent(topic)}/records`, { records, acks: "all", ...idempotence });
  }

  read(topic: string, partition: number, offset: number, max = 1000): Promise<{ nextOffset: number; endOffset: number; records: ReadRecordJson[] }> {
    return this.#call("GET", `/topics/${encodeURIComponent(topic)}/partitions/${partition}/records?offset=${offset}&max=${max}`);
  }

  describeGroup(group: string): Promise<{ offsets?: Array<{ topic: string; partition: number; committed: number | null; endOffset?: number; lag?: number | null }> } & Record<string, unknown>> {
    return this.#call("GET", `/groups/${encodeURIComponent(group)}`);
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new TributaryError("UNAVAILABLE", `cannot reach the Tributary node at ${this.baseUrl} (${cause?.code ?? cause?.message ?? (err as Error).message})`, { url: this.baseUrl }, { cause: err });
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined; // not JSON: reported below with the status and the text
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      if (error && isErrorCode(error.code)) throw new TributaryError(error.code, `${method} ${path}: ${String(error.message)}`, { status: response.status });
      throw new TributaryError(response.status >= 500 ? "UNAVAILABLE" : "INTERNAL", `the node answered ${method} ${path} with HTTP ${response.status}: ${text.slice(0, 200)}`, { status: response.status });
    }
    return json as T;
  }
}

/** Bytes as the HTTP API's JSON form: text when valid UTF-8, else base64. */
export function bytesJson(bytes: Uint8Array | null): BytesJson {
  if (bytes === null) return null;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buf.toString("utf8");
  return Buffer.from(text, "utf8").equals(buf) ? text : { base64: buf.toString("base64") };
}

/** The HTTP API's JSON form back to bytes. */
export function jsonBytes(v: BytesJson): Uint8Array | null {
  if (v === null) return null;
  return typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v.base64, "base64");
}
