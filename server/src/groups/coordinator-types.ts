/**
 * Types of the `GroupCoordinator` API: the member channel a gateway implements, requests,
 * options and admin descriptions. Re-exported by group-coordinator.ts (import them from there).
 */
import type { LogEngine } from "../log/log-engine.ts";
import type { PartitionAssigner } from "./assigners/index.ts";
import type { Clock } from "./clock.ts";
import type { GroupErrorHandler } from "./group-errors.ts";
import type { GroupStateName, GroupStore } from "./group-store.ts";
import type { GroupInstrumentation, LeaveReason } from "./instrumentation.ts";
import type { Membership } from "./membership.ts";
import type { AssignedPartition, OffsetResetPolicy, TopicPartition } from "./types.ts";

/**
 * The per-member listener a gateway implements (WebSocket: `assign`/`revoke` frames;
 * MQTT `$share`: starts/stops tails inside the broker). Calls for one member never overlap
 * in a way that breaks order: a revoke always concerns the member's current generation
 * and the next `assign` comes only after every revoke of the round settled.
 */
export interface GroupMemberChannel {
  /**
   * The member's assignment in a new generation. `partitions` is its complete set;
   * `added` are the ones to start consuming now, each with its start offset (committed
   * offset or reset policy). Partitions in `partitions` but not in `added` keep flowing
   * untouched. Commits from now on must carry `generation`.
   */
  assign(assignment: MemberAssignment): void;
  /**
   * Stop consuming `partitions`, commit what was processed (with the member's current
   * generation; commits are still accepted for these partitions until the promise
   * resolves), then resolve. If the promise does not resolve within the coordinator's
   * `rebalanceTimeoutMs` the partitions are taken anyway and later commits are fenced.
   * A channel that cannot reach the member now (its connection closed) never resolves: it
   * rejects, with a retriable TributaryError (UNAVAILABLE) when that is expected; the
   * coordinator keeps the revoke pending, asks again with backoff, and asks the member's
   * next channel at once when it re-binds (docs/consumer-groups.md, "A member whose
   * connection dropped").
   */
  revoke(revocation: MemberRevocation): Promise<void>;
  /** The coordinator removed the member (session timeout); it must join again. Optional. */
  removed?(reason: LeaveReason): void;
}

export interface MemberAssignment {
  group: string;
  memberId: string;
  generation: number;
  strategy: string;
  partitions: TopicPartition[];
  added: AssignedPartition[];
}

export interface MemberRevocation {
  group: string;
  memberId: string;
  /** The member's current generation (the one its revoke-time commits carry). */
  generation: number;
  partitions: TopicPartition[];
}

export interface JoinRequest {
  clientId: string;
  user?: string | null;
  node: string;
  topics: string[];
  /** Strategies the member supports, preferred first. Default ["cooperative-sticky", "range"]. */
  strategies?: string[];
  /** Start offset when the group has no commit for a partition. Default "latest" (Kafka's default). */
  reset?: OffsetResetPolicy;
  sessionTimeoutMs?: number;
  /** A member re-binding after a reconnect within its session timeout: keeps its id and partitions (no rebalance). */
  memberId?: string;
  channel: GroupMemberChannel;
}

export interface CommitRequest {
  memberId: string;
  generation: number;
  /**
   * `offset`: the next offset to consume. `epoch`: the partition epoch the offset belongs to
   * (the epoch of the member's assignment, or of a `reset` it followed since); when absent
   * the coordinator stores the epoch of the partition in the member's latest assignment.
   */
  offsets: Array<{ topic: string; partition: number; offset: number; epoch?: string; metadata?: string }>;
}

export interface GroupCoordinatorOptions {
  engine: LogEngine;
  groupStore?: GroupStore;
  membership?: Membership;
  clock?: Clock;
  instrumentation?: GroupInstrumentation;
  assigners?: Map<string, PartitionAssigner>;
  /** Partition count of a topic; default: the engine's description, 0 for an unknown topic. Gateways pass `broker.partitions` to auto-create. */
  partitionCount?: (topic: string) => Promise<number>;
  /** Default and bounds of a member's session timeout. Defaults 10 s, [50 ms, 5 min]. */
  sessionTimeoutMs?: number;
  minSessionTimeoutMs?: number;
  maxSessionTimeoutMs?: number;
  /** How long a revoke may take before the partitions are taken anyway. Default 30 s. */
  rebalanceTimeoutMs?: number;
  /**
   * Failures no caller sees, or that must be logged with their context: a rebalance round
   * that failed (retried after a backoff), a group state store failure, a member channel
   * that threw or could not take a revoke, a failed session-timeout sweep. `group` is null
   * when the work spans groups; `task` is the label to count it under
   * (`tributary_background_errors_total{task}`). Default: a warn line on stderr.
   */
  onError?: GroupErrorHandler;
}

export interface GroupMemberDescription {
  memberId: string;
  clientId: string;
  user: string | null;
  node: string;
  joinedAt: number;
  lastSeen: number;
  topics: string[];
  strategies: string[];
  generation: number;
  assignment: TopicPartition[];
  revoking: TopicPartition[];
}

export interface GroupPartitionDescription {
  topic: string;
  partition: number;
  owner: string | null;
  committedOffset: number | null;
  endOffset: number;
  lag: number | null;
}

export interface GroupDescription {
  group: string;
  state: GroupStateName;
  generation: number;
  strategy: string | null;
  members: GroupMemberDescription[];
  partitions: GroupPartitionDescription[];
  /** Sum of the partitions' lag (partitions without a commit count 0). */
  totalLag: number;
}

export interface GroupListing {
  group: string;
  state: GroupStateName;
  generation: number;
  members: number;
}

export interface ResetOffsetsResult {
  group: string;
  topic: string;
  partitions: Array<{ partition: number; previous: number | null; offset: number }>;
}
