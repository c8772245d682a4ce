/**
 * Restoring a task when its partition is assigned, before it processes a record:
 *
 * 1. the partition's last outbox record (`<app>-<source>-outbox`, read at its end − 1);
 * 2. every store's changelog partition, from its earliest offset to its end (compacted:
 *    about one record per live entry), applied in order (a tombstone deletes);
 * 3. the stream time and input position of the outbox: windows it closed are dropped (their
 *    results went out), records below its `b` will be skipped;
 * 4. when the outbox's `b` is past the committed offset, its flush may have died between
 *    writing the outbox and committing: the output topics are read from the outbox's lower
 *    bounds, outputs already there are recognised by their origin header, and only the
 *    missing ones are produced (in their order).
 */
import { StreamsError } from "./errors.ts";
import { headerText, jsonValue, type NodeAdmin } from "./node-admin.ts";
import { JSON_CONTENT_TYPE, ORIGIN_HEADER, type EncodedOutput, type Outbox, type StreamTask } from "./task.ts";

export interface RestoreContext {
  admin: NodeAdmin;
  task: StreamTask;
  /** The group's committed offset of the partition (where delivery starts). */
  committed: number;
  outboxTopic: string;
  changelogTopic(store: string): string;
  /** Produces outputs (acknowledged when it resolves). */
  produce(outputs: EncodedOutput[]): Promise<void>;
}

/** Restores `task`; resolves with the changelog records read and the outputs produced again. */
export async function restoreTask(ctx: RestoreContext): Promise<{ records: number; reemitted: number }> {
  const { admin, task } = ctx;
  const p = task.partition;
  let outbox: Outbox | null = null;
  const info = await admin.describeTopic(ctx.outboxTopic);
  const part = info?.partitionInfo.find((x) => x.partition === p);
  if (part && part.endOffset > part.earliestOffset) {
    for await (const page of admin.read(ctx.outboxTopic, p, part.endOffset - 1)) outbox = jsonValue(page[page.length - 1]!) as Outbox;
  }
  let records = 0;
  for (const store of task.sub.stores) {
    const topic = ctx.changelogTopic(store.name);
    const cinfo = await admin.describeTopic(topic);
    const cpart = cinfo?.partitionInfo.find((x) => x.partition === p);
    if (!cpart) throw new StreamsError("CHANGELOG", `changelog "${topic}" has no partition ${p}`, { topic, partition: p });
    for await (const page of admin.read(topic, p, cpart.earliestOffset)) {
      for (const r of page) {
        if (r.key === null) continue;
        task.restoreRecord(store.name, { key: r.key, value: r.value === null ? null : (jsonValue(r) as { a: unknown; t: number }) });
        records++;
      }
    }
  }
  task.restoreOutbox(outbox);
  const reemitted = outbox && outbox.b > ctx.committed && outbox.out.length > 0 ? await completeOutbox(ctx, outbox) : 0;
  return { records, reemitted };
}

/** Produces the outputs of `outbox` that are not in their topics yet (found by origin header); returns how many. */
async function completeOutbox(ctx: RestoreContext, outbox: Outbox): Promise<number> {
  const prefix = `${ctx.task.names.taskId}|${outbox.b}|`;
  const seen = new Set<string>();
  for (const [topic, partitions] of Object.entries(outbox.from)) {
    for (const [partition, from] of Object.entries(partitions)) {
      for await (const page of ctx.admin.read(topic, Number(partition), from)) {
        for (const r of page) {
          const origin = headerText(r.headers[ORIGIN_HEADER]);
          if (origin?.startsWith(prefix)) seen.add(origin);
        }
      }
    }
  }
  const missing: EncodedOutput[] = [];
  outbox.out.forEach((o, i) => {
    if (seen.has(prefix + i)) return;
    const payload = o.v === null ? null : o.c === JSON_CONTENT_TYPE ? JSON.stringify(o.v) : String(o.v);
    missing.push({ topic: o.t, key: o.k, payload, contentType: o.c, headers: o.h });
  });
  if (missing.length > 0) await ctx.produce(missing);
  return missing.length;
}
