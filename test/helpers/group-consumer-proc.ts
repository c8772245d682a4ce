/**
 * Spawns test/fixtures/group-consumer.ts (a real SDK client in its own process) and parses
 * its JSON-line events; see the fixture for the events and commands.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { waitFor as waitUntil } from "./wait.ts";

const FIXTURE = fileURLToPath(new URL("../fixtures/group-consumer.ts", import.meta.url));

export interface ConsumerEvent {
  ev: string;
  [field: string]: unknown;
}

export interface ProcessedRecord {
  p: number;
  o: number;
  k: string;
  v: string;
}

export interface ConsumerOptions {
  url: string;
  topic: string;
  group?: string;
  clientId: string;
  sessionTimeoutMs?: number;
  autoCommitIntervalMs?: number;
  strategy?: string;
  delayMs?: number;
  reset?: "earliest" | "latest";
  watch?: string;
  subscribe?: boolean;
}

export class ConsumerProcess {
  readonly clientId: string;
  readonly child: ChildProcess;
  readonly events: ConsumerEvent[] = [];
  readonly records: ProcessedRecord[] = [];
  /** Events and records in the order the process printed them. */
  readonly timeline: ConsumerEvent[] = [];
  /** Set by `kill()`. */
  killed = false;
  readonly exited: Promise<number | null>;
  stderr = "";
  #partial = "";

  constructor(options: ConsumerOptions) {
    this.clientId = options.clientId;
    this.child = spawn(process.execPath, ["--conditions=tributary-source", "--import", "tsx", FIXTURE, JSON.stringify(options)], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      const lines = (this.#partial + chunk).split("\n");
      this.#partial = lines.pop()!;
      for (const line of lines) {
        if (!line) continue;
        const event = JSON.parse(line) as ConsumerEvent;
        this.timeline.push(event);
        if (event.ev === "rec") this.records.push(event as unknown as ProcessedRecord);
        else this.events.push(event);
      }
    });
    this.child.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
  }

  /** Partitions owned after the latest assigned / revoked event. */
  get partitions(): number[] {
    let owned = new Set<number>();
    for (const e of this.events) {
      if (e.ev === "assigned") owned = new Set(e.partitions as number[]);
      else if (e.ev === "revoked") for (const p of e.partitions as number[]) owned.delete(p);
    }
    return [...owned].sort((a, b) => a - b);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  send(command: "close" | "drop"): void {
    this.child.stdin!.write(`${command}\n`);
  }

  /** Graceful: commit, leave, exit. */
  async close(): Promise<void> {
    if (!this.alive) return;
    this.send("close");
    await this.exited;
  }

  kill(): void {
    if (!this.alive) return;
    this.killed = true;
    this.child.kill("SIGKILL");
  }
}

/** `waitFor` of test/helpers/wait.ts with this file's argument order: polls `check` every 20 ms until true; throws after `timeoutMs` naming `what`. */
export function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  return waitUntil(check, { what, timeoutMs, intervalMs: 20 });
}
