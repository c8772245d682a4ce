/**
 * `tributary groups list | describe <group> | reset-offsets <group> --topic <t> --to <target>`
 * over the HTTP admin API (server/src/gateway/http/groups-routes.ts).
 *
 * Exit codes (one table for every command, exit-codes.ts): 0 ok; 1 server error (server
 * unreachable); 2 usage (bad flags or --to value); 3 UNKNOWN_GROUP; 4 GROUP_NOT_EMPTY.
 * Errors are thrown as TributaryError and reported by runCli.
 */
import { InvalidArgumentError, type Command } from "commander";
import { TributaryError } from "../errors.ts";
import type { GroupDescription } from "../groups/group-coordinator.ts";
import type { ResetTarget } from "../groups/offsets.ts";
import { addUrlOption, clientFrom } from "./client-options.ts";

/** `earliest`, `latest`, an offset (integer), an ISO-8601 time, or `@<epoch ms>`. */
export function resetTargetArg(raw: string): ResetTarget {
  const value = raw.trim();
  if (value === "earliest" || value === "latest") return value;
  if (/^\d+$/.test(value)) return { offset: Number(value) };
  if (/^@\d+$/.test(value)) return { timestamp: Number(value.slice(1)) };
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return { timestamp: ms };
  }
  throw new InvalidArgumentError(`expected earliest, latest, an offset (e.g. 42), an ISO time (e.g. 2024-05-01T12:00:00Z) or @<epoch ms>; got "${raw}"`);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}

function printDescription(d: GroupDescription): string {
  let out = `group ${d.group}\n  state       ${d.state}\n  generation  ${d.generation}\n  strategy    ${d.strategy ?? "-"}\n  members     ${d.members.length}\n  total lag   ${d.totalLag}\n\n`;
  if (d.members.length > 0) {
    const rows = [["MEMBER", "CLIENT", "USER", "NODE", "PARTITIONS"]];
    for (const m of d.members) rows.push([m.memberId, m.clientId, m.user ?? "-", m.node, m.assignment.map((tp) => `${tp.topic}/${tp.partition}`).join(",") || "-"]);
    out += table(rows) + "\n";
  }
  const rows = [["TOPIC", "PARTITION", "OWNER", "COMMITTED", "END", "LAG"]];
  for (const p of d.partitions) rows.push([p.topic, String(p.partition), p.owner ?? "-", p.committedOffset === null ? "-" : String(p.committedOffset), String(p.endOffset), p.lag === null ? "-" : String(p.lag)]);
  return out + table(rows);
}

export function registerGroupsCommand(program: Command): void {
  const groups = program.command("groups").description("List and describe consumer groups, and reset their committed offsets.");

  addUrlOption(
    groups
      .command("list")
      .description("List consumer groups (with members or committed offsets); internal ones (mqtt.session.*) only with --internal.")
      .option("--json", "print {\"groups\": [...]}")
      .option("--internal", "also list internal groups (persistent MQTT session positions, mqtt.session.<clientId>)"),
  ).action(
    async (o: { json?: boolean; internal?: boolean; url: string }) => {
      const { groups: list } = await clientFrom(o).listGroups(Boolean(o.internal));
      if (o.json) process.stdout.write(JSON.stringify({ groups: list }) + "\n");
      else if (list.length > 0) process.stdout.write(table([["GROUP", "STATE", "GENERATION", "MEMBERS"], ...list.map((g) => [g.group, g.state, String(g.generation), String(g.members)])]));
    },
  );

  addUrlOption(
    groups.command("describe <group>").description("Show a group's state, members with their partitions, and committed offset, end offset and lag per partition.").option("--json", "print the description as JSON"),
  ).action(async (group: string, o: { json?: boolean; url: string }) => {
    const d = await clientFrom(o).describeGroup(group);
    process.stdout.write(o.json ? JSON.stringify(d) + "\n" : printDescription(d));
  });

  addUrlOption(
    groups
      .command("reset-offsets <group>")
      .description("Move a group's committed offsets on a topic. Only while the group has no members (stop its consumers first).")
      .requiredOption("--topic <topic>", "the topic whose offsets to move")
      .requiredOption("--to <target>", "earliest | latest | <offset> | <ISO time, e.g. 2024-05-01T12:00:00Z> | @<epoch ms>", resetTargetArg)
      .option("--partition <n...>", "only these partitions (default: all)")
      .option("--json", "print the result as JSON"),
  ).action(async (group: string, o: { topic: string; to: ResetTarget; partition?: string[]; json?: boolean; url: string }) => {
    let partitions: number[] | undefined;
    if (o.partition) {
      partitions = o.partition.map((raw) => {
        if (!/^\d+$/.test(raw)) throw new TributaryError("BAD_REQUEST", `--partition: expected an integer >= 0, got "${raw}"`);
        return Number(raw);
      });
    }
    const result = await clientFrom(o).resetGroupOffsets(group, { topic: o.topic, to: o.to, partitions });
    if (o.json) {
      process.stdout.write(JSON.stringify(result) + "\n");
      return;
    }
    process.stdout.write(`reset group ${result.group} on ${result.topic}\n`);
    process.stdout.write(table([["PARTITION", "PREVIOUS", "NEW"], ...result.partitions.map((p) => [String(p.partition), p.previous === null ? "-" : String(p.previous), String(p.offset)])]));
  });
}
