import { randomInt } from "node:crypto";
import type { Cluster } from "ioredis";
import { TributaryError } from "../../errors.ts";
import { isCompacted, type AppendOptions, type AppendResult, type RecordInput } from "../log-engine.ts";
import { keylessRecordError } from "../topic-config.ts";
import { hwKey, str, type RedisEngineCore } from "./redis-engine-core.ts";
import { encodeRecord } from "./redis-record-codec.ts";
import { isNoScript, SCRIPTS } from "./redis-scripts.ts";

/** Sequence part of every stream ID of a batch: random, so two histories never share one. */
function newToken(): string {
  return String(randomInt(1, 2 ** 47));
}

/**
 * The append path of `RedisLogEngine` (internal to it): encodes the batch, runs append.lua
 * under the epoch guard (offsets, retention by bytes and producer dedup in one script), and
 * for acks=all waits for replicas: a shared WAIT on one connection (group commit), or the
 * script and WAIT pipelined together on Cluster.
 */
export class RedisAppender {
  readonly #core: RedisEngineCore;
  #waitInFlight: Promise<unknown> | null = null;
  #nextWait: { replicas: number; promise: Promise<number> } | null = null;

  constructor(core: RedisEngineCore) {
    this.#core = core;
  }

  async append(topic: string, partition: number, records: RecordInput[], options: AppendOptions = {}): Promise<AppendResult> {
    const core = this.#core;
    core.assertOpen();
    if (!Array.isArray(records) || records.length === 0) {
      throw new TributaryError("BAD_REQUEST", "append needs a non-empty array of records", { topic, partition });
    }
    const now = Date.now();
    const encoded = records.map((r, i) => encodeRecord(r, i, now));
    const size = encoded.reduce((s, r) => s + r.size, 0);
    const maxBatchBytes = core.options.maxBatchBytes ?? 1 << 20;
    if (size > maxBatchBytes) {
      throw new TributaryError("RECORD_TOO_LARGE", `batch of ${size} bytes exceeds maxBatchBytes ${maxBatchBytes}`, { topic, partition, size, max: maxBatchBytes });
    }
    const t = await core.partitionTopic(topic, partition);
    if (isCompacted(t.cleanupPolicy)) {
      for (let i = 0; i < records.length; i++) if (records[i]!.key === null) throw keylessRecordError(topic, partition, i);
    }
    const acks = options.acks ?? 1;
    const replicas = Math.max(core.options.replicas ?? 0, t.replicationFactor - 1);
    const token = newToken();
    const key = hwKey(topic, partition);
    const args: (string | Buffer | number)[] = [
      ...core.guardArgs(key),
      core.keys.notifyChannel(topic, partition),
      token,
      "", // time retention runs in the periodic pass (it keeps at least the last record)
      t.retentionBytes === null || t.cleanupPolicy === "compact" ? "" : t.retentionBytes, // compact only: no size retention
      encoded.length,
    ];
    for (const r of encoded) args.push(r.flags, r.key, r.value, r.headers, r.timestamp);
    const producers = options.producers ?? [];
    args.push(now, core.options.producerWindow ?? 1024, producers.length);
    for (const e of producers) {
      if (!Number.isSafeInteger(e.sequence) || e.sequence < 0 || !Number.isInteger(e.first) || e.first < 0 || !Number.isInteger(e.count) || e.count < 1 || e.first + e.count > records.length) {
        throw new TributaryError("BAD_REQUEST", `producer entry ${JSON.stringify(e)} does not fit the batch of ${records.length} records`, { topic, partition });
      }
      args.push(e.producerId, e.sequence, e.first, e.count);
    }
    const keys = [core.keys.log(topic, partition), core.keys.meta(topic, partition), core.keys.producers(topic, partition), core.keys.producersSeen(topic, partition)];
    const ctx = { topic, partition };

    let reply = await this.#runAppend(keys, args, acks === "all" ? replicas : 0, ctx);
    if (str(reply[0]) === "NOMETA") {
      await core.recoverPartition(topic, partition);
      reply = await this.#runAppend(keys, args, acks === "all" ? replicas : 0, ctx);
      if (str(reply[0]) === "NOMETA") throw new TributaryError("UNKNOWN_TOPIC", `topic ${topic} does not exist`, ctx);
    }
    const [, epoch, base, end, , lastToken] = reply.slice(0, 6).map(str);
    core.observe(key, { epoch: epoch!, end: Number(end), token: lastToken! });
    const dupReply = (reply[7] as unknown[] | undefined) ?? [];
    const duplicates: Array<{ entry: number; baseOffset: number }> = [];
    for (let i = 0; i + 1 < dupReply.length; i += 2) duplicates.push({ entry: Number(str(dupReply[i])), baseOffset: Number(str(dupReply[i + 1])) });
    core.notifier.notify(topic, partition);
    const timestamp = encoded.reduce((m, r) => Math.max(m, r.timestamp), 0);
    const baseOffset = Number(base);
    if (acks === "all" && replicas > 0) {
      const acked = Number(reply.acked);
      if (acked < replicas) {
        throw new TributaryError(
          "NOT_ENOUGH_REPLICAS",
          `batch at ${topic}/${partition}@${baseOffset} reached ${acked} of ${replicas} replicas in ${core.waitTimeoutMs()} ms; it is in the primary's log but may be lost on failover`,
          { ...ctx, baseOffset, acked, required: replicas },
        );
      }
    }
    return duplicates.length > 0 ? { baseOffset, timestamp, duplicates } : { baseOffset, timestamp };
  }

  /** Runs append.lua, plus WAIT on the same connection (same pipeline) when replicas > 0. */
  async #runAppend(
    keys: string[],
    args: (string | Buffer | number)[],
    replicas: number,
    ctx: Record<string, unknown>,
  ): Promise<unknown[] & { acked?: number }> {
    const core = this.#core;
    return core.call(ctx, async () => {
      if (replicas === 0) return (await SCRIPTS.append.run(core.client, keys, args)) as unknown[];
      if (!(core.client as Cluster).isCluster) {
        // One connection: a WAIT covers every write sent before it, so concurrent acks=all
        // appends share the next WAIT (group commit) instead of queueing one WAIT each.
        const out = (await SCRIPTS.append.run(core.client, keys, args)) as unknown[] & { acked?: number };
        if (str(out[0]) !== "NOMETA") out.acked = await this.#sharedWait(replicas);
        return out;
      }
      for (const useEval of [false, true]) {
        const pipeline = core.client.pipeline();
        SCRIPTS.append.addTo(pipeline, keys, args, useEval);
        pipeline.call("WAIT", replicas, core.waitTimeoutMs());
        const results = (await pipeline.exec()) ?? [];
        const [scriptErr, scriptReply] = results[0] ?? [new Error("empty pipeline reply"), null];
        if (scriptErr) {
          if (!useEval && isNoScript(scriptErr)) continue;
          throw scriptErr;
        }
        const [waitErr, waitReply] = results[1] ?? [null, 0];
        if (waitErr) throw waitErr;
        const out = scriptReply as unknown[] & { acked?: number };
        out.acked = Number(waitReply);
        return out;
      }
      throw new Error("unreachable");
    });
  }

  /** Joins the next WAIT sent on the connection (sent once the one in flight returns). */
  #sharedWait(replicas: number): Promise<number> {
    if (this.#nextWait && this.#nextWait.replicas === replicas) return this.#nextWait.promise;
    const before = this.#waitInFlight ?? Promise.resolve();
    // Only orders this WAIT after the one in flight: that one's failure is its own callers'
    // (they await it), not this WAIT's, so here it is not an error.
    const next = {
      replicas,
      promise: before.catch(() => {}).then(async () => {
        if (this.#nextWait === next) this.#nextWait = null;
        const p = this.#core.client.call("WAIT", replicas, this.#core.waitTimeoutMs());
        this.#waitInFlight = p;
        return Number(await p);
      }),
    };
    this.#nextWait = next;
    return next.promise;
  }
}
