/**
 * HTTP webhook sink (`type: webhook-sink`): POSTs each batch as a JSON array to `url`.
 *
 *   POST <url>
 *   content-type: application/json
 *   x-tributary-connector: <name>
 *   idempotency-key: <topic>-<partition>-<offset> of the first record + "-" + record count
 *   x-tributary-signature: t=<ms since epoch>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>   (with `secret`)
 *
 *   [{ "topic", "partition", "offset", "timestamp", "key", "contentType", "headers",
 *      "value" }]   value: parsed JSON for JSON content types, text when UTF-8, else { "base64" }
 *
 * Outcome: 2xx delivered. Network errors and timeouts: the target is down, retried without
 * limit. 408, 429 and 5xx: the batch failed, retried per record up to `maxRetries`, then the
 * DLQ. Other 4xx: the receiver refuses the records for good: DLQ at once.
 * Delivery is at-least-once: a receiver dedupes by (topic, partition, offset).
 */
import { createHmac } from "node:crypto";
import type { FieldReader } from "../connect-config.ts";
import { isJsonType, SinkError, type SinkConnector, type SinkRecord } from "../connector.ts";
import { bytesJson } from "../node-api.ts";

export interface WebhookSinkOptions {
  url: string;
  secret: string | null;
  signatureHeader: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

export function webhookSinkOptions(f: FieldReader): WebhookSinkOptions {
  const url = f.string("url");
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    f.fail("url", `expected an http:// or https:// URL, got "${url}"`);
  }
  const secretEnv = f.string("secretEnv", null);
  let secret = f.string("secret", null);
  if (secretEnv !== null) {
    secret = process.env[secretEnv] ?? null;
    if (!secret) f.fail("secretEnv", `the environment variable ${secretEnv} is not set`);
  }
  return {
    url,
    secret,
    signatureHeader: f.string("signatureHeader", "x-tributary-signature")!.toLowerCase(),
    headers: f.stringMap("headers") ?? {},
    timeoutMs: f.int("timeoutMs", 10_000, 1, 600_000),
  };
}

/** The signature header's value for `body` at time `t` (ms): `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function webhookSignature(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
}

export function recordJson(r: SinkRecord): Record<string, unknown> {
  let value: unknown = bytesJson(r.value);
  if (typeof value === "string" && isJsonType(r.contentType)) {
    try {
      value = JSON.parse(value);
    } catch {
      // labelled JSON but not JSON: sent as the text it is
    }
  }
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.headers)) if (k !== "content-type") headers[k] = bytesJson(v);
  return { topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp, key: r.key, contentType: r.contentType, headers, value };
}

export class WebhookSink implements SinkConnector {
  readonly #name: string;
  readonly #options: WebhookSinkOptions;

  constructor(name: string, options: WebhookSinkOptions) {
    this.#name = name;
    this.#options = options;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async write(records: SinkRecord[]): Promise<void> {
    const body = JSON.stringify(records.map(recordJson));
    const first = records[0]!;
    const headers: Record<string, string> = {
      ...this.#options.headers,
      "content-type": "application/json",
      "x-tributary-connector": this.#name,
      "idempotency-key": `${first.topic}-${first.partition}-${first.offset}-${records.length}`,
    };
    if (this.#options.secret !== null) headers[this.#options.signatureHeader] = webhookSignature(this.#options.secret, Date.now(), body);
    let response: Response;
    try {
      response = await fetch(this.#options.url, { method: "POST", headers, body, signal: AbortSignal.timeout(this.#options.timeoutMs) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new SinkError("target", `POST ${this.#options.url}: ${cause?.code ?? (err as Error).message}`, true, { cause: err });
    }
    const text = await response.text().catch((err: Error) => `(body unreadable: ${err.message})`);
    if (response.ok) return;
    const status = response.status;
    const retriable = status === 408 || status === 429 || status >= 500;
    throw new SinkError("records", `POST ${this.#options.url} answered ${status}: ${text.slice(0, 200)}`, retriable);
  }
}
