/**
 * Record routes: produce (POST /topics/:topic/records) and read one partition
 * (GET /topics/:topic/partitions/:partition/records), with optional long-poll.
 * Encodings are described in record-encoding.ts and docs/http-api.md.
 */
import { TributaryError } from "../../errors.ts";
import type { Broker } from "../../broker/broker.ts";
import { checkClientTopicAccess } from "../../broker/internal-topics.ts";
import type { LogRecord } from "../../log/log-engine.ts";
import type { GatewayContext } from "../gateway-context.ts";
import { authorize, isAdminReader } from "./http-auth.ts";
import type { HttpRouter } from "./http-router.ts";
import { isNdjson, parseBody, parseNdjson, parseProduceRequest, renderRecordCbor, renderRecordJson, show } from "./record-encoding.ts";
import { checkTopicName } from "./topics-routes.ts";
import { clientLimitsFor, retryAfterSeconds } from "../limits/index.ts";

export const DEFAULT_READ_MAX = 100;
export const MAX_READ_MAX = 10_000;
/** Longest long-poll a reader may ask for with `waitMs`. */
export const MAX_WAIT_MS = 30_000;

export function mountRecordRoutes(router: HttpRouter, ctx: GatewayContext): void {
  const { broker, auth } = ctx;
  const limits = clientLimitsFor(broker, ctx.config, auth);

  router.route(
    "post",
    "/topics/:topic/records",
    async (req) => {
      const topic = checkTopicName(req.params[0]!);
      checkClientTopicAccess(topic, "produce");
      // NDJSON: one record object per line, produced as one batch (acks from ?acks=).
      const body = isNdjson(req.contentType) ? { records: parseNdjson(req.body) } : parseBody(req.body, req.contentType);
      const request = parseProduceRequest(body, req.query.get("acks"));
      // Every record's key must be allowed (a narrow grant allows only keys that are its MQTT topics).
      for (const record of request.records) authorize(auth, req.identity, (a, id) => a.canProduce(id, topic, record.key ?? null), "produce", topic);
      if (limits.limitsPublish) {
        // Over the identity's publish rate (docs/security.md#limits): 429 QUEUE_FULL with Retry-After, nothing stored.
        let bytes = 0;
        for (const record of request.records) bytes += record.value?.byteLength ?? 0;
        const refusal = limits.publish(req.identity, bytes, "http", request.records.length);
        if (refusal !== null) {
          return { status: 429, body: { error: { code: "QUEUE_FULL", message: refusal.message } }, headers: { "Retry-After": String(retryAfterSeconds(refusal.retryAfterMs)) } };
        }
      }
      const results = await broker.produce(topic, request.records, {
        acks: request.acks,
        producerId: request.producerId,
        sequence: request.sequence,
        source: "http",
      });
      if (request.acks === 0) return { status: 202 };
      return { status: 200, body: { offsets: results.map(({ partition, offset }) => ({ partition, offset })) } };
    },
    { readBody: true, bodyTypes: ["application/json", "application/cbor", "application/x-ndjson"] },
  );

  router.route("get", "/topics/:topic/partitions/:partition/records", async (req) => {
    const topic = checkTopicName(req.params[0]!);
    checkClientTopicAccess(topic, "read", isAdminReader(auth, req.identity));
    authorize(auth, req.identity, (a, id) => a.canConsume(id, topic), "consume", topic);
    const partition = intParam(req.params[1]!, "partition");
    const max = optionalInt(req.query.get("max"), "max", 1, MAX_READ_MAX) ?? DEFAULT_READ_MAX;
    const maxBytes = optionalInt(req.query.get("maxBytes"), "maxBytes", 1, Number.MAX_SAFE_INTEGER);
    const waitMs = optionalInt(req.query.get("waitMs"), "waitMs", 0, MAX_WAIT_MS) ?? 0;

    const before = await broker.offsets(topic, partition);
    const offset = resolveOffset(req.query.get("offset"), before.earliestOffset, before.endOffset);
    if (offset < before.earliestOffset || offset > before.endOffset) {
      throw new TributaryError(
        "OFFSET_OUT_OF_RANGE",
        `offset ${offset} is out of range for partition ${partition} of "${topic}": readable offsets are ${before.earliestOffset}..${before.endOffset} (end offset, where the next record will be)`,
        { topic, partition, offset, earliest: before.earliestOffset, end: before.endOffset },
      );
    }
    let records = await broker.read(topic, partition, offset, { maxRecords: max, maxBytes });
    if (records.length === 0 && waitMs > 0) records = await waitForRecords(broker, topic, partition, offset, max, waitMs, req.signal);
    const after = await broker.offsets(topic, partition);

    const cbor = req.accept.includes("application/cbor");
    return {
      status: 200,
      format: cbor ? "cbor" : "json",
      body: {
        topic,
        partition,
        epoch: after.epoch,
        earliestOffset: after.earliestOffset,
        endOffset: after.endOffset,
        nextOffset: records.length > 0 ? records[records.length - 1]!.offset + 1 : offset,
        records: records.map(cbor ? renderRecordCbor : renderRecordJson),
      },
    };
  });
}

/** `offset` query: an integer, "earliest" (default) or "latest" (= end offset). */
function resolveOffset(raw: string | null, earliest: number, end: number): number {
  if (raw === null || raw === "" || raw === "earliest") return earliest;
  if (raw === "latest") return end;
  return intParam(raw, "offset");
}

function intParam(raw: string, name: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new TributaryError("BAD_REQUEST", `${name}: expected a non-negative integer, got ${show(raw)}`);
  return n;
}

function optionalInt(raw: string | null, name: string, min: number, max: number): number | undefined {
  if (raw === null || raw === "") return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new TributaryError("BAD_REQUEST", `${name}: expected an integer ${min}..${max}, got ${show(raw)}`);
  return n;
}

/** Long-poll: the first records appended at/after `offset` within `waitMs`, or none. */
function waitForRecords(broker: Broker, topic: string, partition: number, offset: number, max: number, waitMs: number, signal: AbortSignal): Promise<LogRecord[]> {
  return new Promise<LogRecord[]>((resolve, reject) => {
    let settled = false;
    const finish = (records: LogRecord[] | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      tail?.close();
      if (records instanceof Error) reject(records);
      else resolve(records);
    };
    const onAbort = () => finish([]);
    const timer = setTimeout(() => finish([]), waitMs);
    signal.addEventListener("abort", onAbort);
    let tail: { close(): void } | undefined;
    tail = broker.tail(topic, partition, offset, {
      onRecords: (records) => finish(records.slice(0, max)),
      onError: (err) => finish(err),
    });
    if (settled) tail.close();
    if (signal.aborted) finish([]);
  });
}
