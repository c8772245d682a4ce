import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ChainableCommander } from "ioredis";
import type { RedisClient } from "../../redis/redis-connection.ts";

const SCRIPTS_DIR = new URL("./scripts/", import.meta.url);
const INCLUDE = /^--!include\s+(\S+)\s*$/m;

function loadLua(file: string, seen: Set<string> = new Set()): string {
  if (seen.has(file)) throw new Error(`include cycle at ${file}`);
  seen.add(file);
  const text = readFileSync(new URL(file, SCRIPTS_DIR), "utf8");
  return text.replace(new RegExp(INCLUDE.source, "gm"), (_m, inc: string) => loadLua(inc, seen));
}

/** A Lua script file (scripts/*.lua, `--!include` resolved), run by EVALSHA with EVAL fallback. */
export class RedisScript {
  readonly lua: string;
  readonly sha: string;

  constructor(readonly file: string, readonly numberOfKeys: number) {
    this.lua = loadLua(file);
    this.sha = createHash("sha1").update(this.lua).digest("hex");
  }

  async run(client: RedisClient, keys: string[], args: (string | Buffer | number)[]): Promise<unknown> {
    try {
      return await client.callBuffer("EVALSHA", this.sha, this.numberOfKeys, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return client.callBuffer("EVAL", this.lua, this.numberOfKeys, ...keys, ...args);
    }
  }

  /** Adds EVALSHA (or EVAL) to a pipeline. */
  addTo(pipeline: ChainableCommander, keys: string[], args: (string | Buffer | number)[], useEval = false): void {
    if (useEval) pipeline.callBuffer("EVAL", this.lua, this.numberOfKeys, ...keys, ...args);
    else pipeline.callBuffer("EVALSHA", this.sha, this.numberOfKeys, ...keys, ...args);
  }
}

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("NOSCRIPT");
}

/** Every script of the engine. */
export const SCRIPTS = {
  append: new RedisScript("append.lua", 4),
  read: new RedisScript("read.lua", 2),
  offsetForTimestamp: new RedisScript("offset-for-timestamp.lua", 2),
  trim: new RedisScript("trim.lua", 2),
  initPartition: new RedisScript("init-partition.lua", 2),
  createTopic: new RedisScript("create-topic.lua", 1),
  commitOffset: new RedisScript("commit-offset.lua", 1),
  expireProducers: new RedisScript("expire-producers.lua", 2),
  alterTopic: new RedisScript("alter-topic.lua", 1),
  compact: new RedisScript("compact.lua", 4),
} as const;
