import type { PartitionAssigner } from "./assigner.ts";
import { CooperativeStickyAssigner } from "./cooperative-sticky.ts";
import { RangeAssigner } from "./range.ts";
import { RoundRobinAssigner } from "./round-robin.ts";

export type { AssignmentInput, AssignmentMember, PartitionAssigner } from "./assigner.ts";
export { CooperativeStickyAssigner } from "./cooperative-sticky.ts";
export { RangeAssigner } from "./range.ts";
export { RoundRobinAssigner } from "./round-robin.ts";

/** The built-in strategies by name: "range", "round-robin", "cooperative-sticky". */
export function defaultAssigners(): Map<string, PartitionAssigner> {
  const list: PartitionAssigner[] = [new CooperativeStickyAssigner(), new RangeAssigner(), new RoundRobinAssigner()];
  return new Map(list.map((a) => [a.name, a]));
}
