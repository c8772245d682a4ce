import { crc32c } from "@node-rs/crc32";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { GroupOffsetStore, OFFSETS_FILE } from "./group-offsets.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function newDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "trib-offsets-"));
  dirs.push(d);
  return d;
}

const line = (obj: object): string => {
  const json = JSON.stringify(obj);
  return `${crc32c(json).toString(16).padStart(8, "0")} ${json}\n`;
};

describe("GroupOffsetStore epochs", () => {
  it("reads-lines-written-before-commits-had-epochs-as-epoch-unknown-and-keeps-epochs-through-compaction", async () => {
    const dir = newDir();
    fs.writeFileSync(
      path.join(dir, OFFSETS_FILE),
      line({ g: "g", t: "orders", p: 0, o: 5, m: "old", c: 1 }) + // before epochs
        line({ g: "g", t: "orders", p: 1, o: 9, e: "e1", m: "", c: 2 }) +
        '0000000 {"g":"torn', // a torn last line: the file is rewritten compactly on open
    );
    const warnings: string[] = [];
    let store = GroupOffsetStore.open(dir, (m) => warnings.push(m));
    expect(warnings).toHaveLength(1);
    expect(store.fetch("g", "orders", 0)).toEqual({ offset: 5, epoch: null, metadata: "old", committedAt: 1 });
    expect(store.fetch("g", "orders", 1)).toEqual({ offset: 9, epoch: "e1", metadata: "", committedAt: 2 });
    await store.commit("g", "orders", 2, 3, "e2", "m", 7);
    await store.close();
    store = GroupOffsetStore.open(dir, () => undefined);
    const all = store.fetchGroup("g").get("orders")!;
    expect([...all].map(([p, c]) => [p, c.offset, c.epoch])).toEqual([
      [0, 5, null],
      [1, 9, "e1"],
      [2, 3, "e2"],
    ]);
    await store.close();
    // an unknown epoch is written without "e" (what older code wrote): the format stays readable both ways
    expect(fs.readFileSync(path.join(dir, OFFSETS_FILE), "utf8")).not.toMatch(/"e":null/);
  });
});
