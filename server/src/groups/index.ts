/**
 * Public entry of the group layer: what gateways, the node and the CLI use.
 * Internals (stores' details, KeyedMutex) are imported by path only; the unit tests'
 * harness is test/helpers/group-harness.ts.
 */
export { GroupCoordinator } from "./group-coordinator.ts";
export type {
  CommitRequest,
  GroupCoordinatorOptions,
  GroupDescription,
  GroupListing,
  GroupMemberChannel,
  GroupMemberDescription,
  GroupPartitionDescription,
  JoinRequest,
  MemberAssignment,
  MemberRevocation,
  ResetOffsetsResult,
} from "./group-coordinator.ts";
export { INTERNAL_GROUP_PREFIXES, isInternalGroup } from "./internal-groups.ts";
export { PresenceRegistry } from "./presence.ts";
export type { PresenceEntry, PresenceListener, PresenceRegistryOptions } from "./presence.ts";
export { Membership } from "./membership.ts";
export { InMemoryMembershipStore } from "./membership-store.ts";
export type { MemberRecord, MembershipStore } from "./membership-store.ts";
export { InMemoryGroupStore } from "./group-store.ts";
export type { GroupMemberState, GroupState, GroupStateName, GroupStore } from "./group-store.ts";
export { GroupInstrumentation } from "./instrumentation.ts";
export { GROUP_BACKGROUND_TASKS } from "./instrumentation.ts";
export type { GroupBackgroundTask, GroupInstrumentationEvent, GroupInstrumentationPayloads, GroupInstrumentationType, LeaveReason } from "./instrumentation.ts";
export type { GroupErrorHandler } from "./group-errors.ts";
export { defaultAssigners, CooperativeStickyAssigner, RangeAssigner, RoundRobinAssigner } from "./assigners/index.ts";
export type { AssignmentInput, PartitionAssigner } from "./assigners/index.ts";
export { parseResetTarget, type ResetTarget } from "./offsets.ts";
export { systemClock, ManualClock, type Clock } from "./clock.ts";
export type { AssignedPartition, OffsetResetPolicy, TopicPartition } from "./types.ts";
