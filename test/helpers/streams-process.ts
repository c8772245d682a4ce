/**
 * Streams instances as child processes (test/helpers/streams-runner.ts under tsx), and the
 * HTTP helpers the streams tests share: create topics, produce timestamped records, read a
 * whole topic.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { StreamsRunnerOptions } from "./streams-runner.ts";
import { within } from "./wait.ts";

const RUNNER = fileURLToPath(new URL("./streams-runner.ts", import.meta.url));

export interface StreamsChild {
  child: ChildProcess;
  output(): string;
  /** Outputs it produced and input records it flushed, as of its last flush. */
  progress(): { emitted: number; flushed: number };
  exited: Promise<number | null>;
  /** Resolves with the metrics line of a clean stop (SIGTERM). */
  stop(): Promise<Record<string, number>>;
  kill(): Promise<void>;
}

export async function spawnStreams(options: StreamsRunnerOptions): Promise<StreamsChild> {
  const child = spawn(process.execPath, ["--conditions=tributary-source", "--import", "tsx", RUNNER, JSON.stringify(options)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  await within(
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (out.includes("started\n")) resolve();
      };
      child.stdout!.on("data", check);
      void exited.then((code) => reject(new Error(`streams runner exited with ${code} before starting:\n${out}\n${err}`)));
    }),
    30_000,
    "the streams runner to start",
  );
  return {
    child,
    output: () => `${out}${err}`,
    progress: () => {
      const all = [...out.matchAll(/^progress (\d+) (\d+)$/gm)];
      const last = all[all.length - 1];
      return last ? { emitted: Number(last[1]), flushed: Number(last[2]) } : { emitted: 0, flushed: 0 };
    },
    exited,
    async stop() {
      child.kill("SIGTERM");
      const code = await within(exited, 30_000, "the streams runner to stop");
      const m = /stopped (\{.*\})/.exec(out);
      if (code !== 0 || !m) throw new Error(`streams runner stopped with ${code}:\n${out}\n${err}`);
      return JSON.parse(m[1]!) as Record<string, number>;
    },
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

export async function createTopic(httpBase: string, name: string, partitions: number, cleanupPolicy = "delete"): Promise<void> {
  const res = await fetch(`${httpBase}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, partitions, cleanupPolicy }) });
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${await res.text()}`);
}

export interface TimedRecord {
  key: string;
  value: unknown;
  timestamp: number;
  partition?: number;
}

/** Produces records through HTTP (explicit timestamps), in order, `batch` per request. */
export async function produceTimed(httpBase: string, topic: string, records: TimedRecord[], batch = 2000): Promise<void> {
  for (let i = 0; i < records.length; i += batch) {
    const body = JSON.stringify({ records: records.slice(i, i + batch) });
    const res = await fetch(`${httpBase}/topics/${topic}/records`, { method: "POST", headers: { "content-type": "application/json" }, body });
    if (res.status !== 200) throw new Error(`produce to ${topic}: ${res.status} ${await res.text()}`);
  }
}

export interface ReadRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

/** Every record of every partition of `topic` (HTTP reads up to the end offsets at the call). */
export async function readTopic(httpBase: string, topic: string): Promise<ReadRecord[]> {
  const info = (await (await fetch(`${httpBase}/topics/${topic}`)).json()) as { partitionInfo: Array<{ partition: number; earliestOffset: number; endOffset: number }> };
  const out: ReadRecord[] = [];
  for (const p of info.partitionInfo) {
    let offset = p.earliestOffset;
    while (offset < p.endOffset) {
      const reply = (await (await fetch(`${httpBase}/topics/${topic}/partitions/${p.partition}/records?offset=${offset}&max=10000`)).json()) as { nextOffset: number; records: Omit<ReadRecord, "partition">[] };
      for (const r of reply.records) out.push({ ...r, partition: p.partition });
      if (reply.nextOffset <= offset) break;
      offset = reply.nextOffset;
    }
  }
  return out;
}
