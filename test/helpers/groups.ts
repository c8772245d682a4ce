/**
 * Helpers of the consumer-group tests: keyed producing through the node's broker and the
 * HTTP admin API (describe), so the tests check what an operator would see.
 */
import type { TributaryNode } from "../../server/src/node.ts";
import type { GroupDescription } from "../../server/src/groups/index.ts";

const enc = new TextEncoder();

/** Produces keyed records `key-<k>` with values `key-<k>:<seq>` (seq per key from 0), remembering what it wrote. */
export class KeyedProducer {
  readonly node: TributaryNode;
  readonly topic: string;
  readonly keys: number;
  readonly #seq: number[];
  /** partition → end offset after the last produce. */
  readonly end = new Map<number, number>();
  produced = 0;

  constructor(node: TributaryNode, topic: string, keys: number) {
    this.node = node;
    this.topic = topic;
    this.keys = keys;
    this.#seq = Array.from({ length: keys }, () => 0);
  }

  async produce(count: number, batch = 200): Promise<void> {
    for (let done = 0; done < count; ) {
      const n = Math.min(batch, count - done);
      const records = Array.from({ length: n }, (_, i) => {
        const k = (this.produced + done + i) % this.keys;
        return { key: enc.encode(`key-${k}`), value: enc.encode(`key-${k}:${this.#seq[k]!++}`) };
      });
      const acks = await this.node.broker.produce(this.topic, records);
      for (const a of acks) this.end.set(a.partition, Math.max(this.end.get(a.partition) ?? 0, a.offset + 1));
      done += n;
    }
    this.produced += count;
  }

  /** Produces `perSecond` records a second until `stop()` is called or `total` is reached. */
  stream(perSecond: number, total = Infinity): { stop(): Promise<void> } {
    let stopped = false;
    const run = (async () => {
      const tick = 50;
      while (!stopped && this.produced < total) {
        const started = Date.now();
        await this.produce(Math.min(Math.max(1, Math.round((perSecond * tick) / 1000)), total - this.produced));
        await new Promise((r) => setTimeout(r, Math.max(0, tick - (Date.now() - started))));
      }
    })();
    return {
      async stop() {
        stopped = true;
        await run;
      },
    };
  }
}

export async function describeGroup(node: TributaryNode, group: string): Promise<GroupDescription> {
  const res = await fetch(`${node.url}/groups/${encodeURIComponent(group)}`);
  const body = (await res.json()) as GroupDescription & { error?: { code: string } };
  if (res.status !== 200) throw new Error(`describe ${group}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}
