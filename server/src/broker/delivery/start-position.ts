import type { ResetFrame, ResetPolicy, StartPosition, SubscribedPartition } from "@tributary/client/protocol";
import { TributaryError } from "../../errors.ts";
import type { PartitionInfo } from "../../log/log-engine.ts";
import type { Broker } from "../broker.ts";

export interface ResolvedStart extends SubscribedPartition {
  /** True when `offset` is the partition's end offset (delivery starts at the live edge). */
  atEnd: boolean;
}

export interface ResolvedStarts {
  partitions: ResolvedStart[];
  /** Positions the reset policy moved (sent to the client as `reset` frames). */
  resets: Omit<ResetFrame, "sub">[];
}

/**
 * Where a subscription starts in each partition:
 * - `earliest` / `latest`: the partition's earliest / end offset.
 * - `{timestamp}`: the first offset whose timestamp is >= it (the end offset if none).
 * - `{offsets, epochs?}`: the given next offset per partition. A partition missing from
 *   `offsets` starts where the reset policy says (`earliest` → earliest, otherwise the
 *   end). An offset below the earliest or above the end offset (OFFSET_OUT_OF_RANGE), or
 *   an epoch different from the partition's current one (STALE_EPOCH), is moved by the
 *   reset policy (`earliest` | `latest`) and reported in `resets`; policy `error` throws
 *   a TributaryError with that code instead.
 */
export async function resolveStarts(
  broker: Broker,
  topic: string,
  infos: PartitionInfo[],
  from: StartPosition,
  reset: ResetPolicy,
): Promise<ResolvedStarts> {
  const partitions: ResolvedStart[] = [];
  const resets: Omit<ResetFrame, "sub">[] = [];
  if (typeof from === "object" && "offsets" in from) {
    for (const key of [...Object.keys(from.offsets), ...Object.keys(from.epochs ?? {})]) {
      const p = Number(key);
      if (!Number.isInteger(p) || p < 0 || p >= infos.length) {
        throw new TributaryError("UNKNOWN_PARTITION", `topic "${topic}" has partitions 0..${infos.length - 1}, not ${key}`, { topic, partition: p });
      }
    }
  }
  for (const info of infos) {
    const { partition, epoch, earliestOffset, endOffset } = info;
    let offset: number;
    if (from === "earliest") offset = earliestOffset;
    else if (from === "latest") offset = endOffset;
    else if ("timestamp" in from) {
      offset = Math.max(earliestOffset, await broker.offsetForTimestamp(topic, partition, from.timestamp));
    } else {
      const requested = from.offsets[partition];
      if (requested === undefined) {
        offset = reset === "earliest" ? earliestOffset : endOffset;
      } else {
        const wantedEpoch = from.epochs?.[partition];
        const reason =
          wantedEpoch !== undefined && wantedEpoch !== epoch
            ? "STALE_EPOCH"
            : requested < earliestOffset || requested > endOffset
              ? "OFFSET_OUT_OF_RANGE"
              : null;
        if (reason === null) {
          offset = requested;
        } else {
          if (reset === "error") {
            throw new TributaryError(
              reason,
              reason === "STALE_EPOCH"
                ? `partition ${partition} of "${topic}" has epoch ${epoch}, not ${wantedEpoch}: its history changed`
                : `offset ${requested} is outside ${earliestOffset}..${endOffset} of partition ${partition} of "${topic}"`,
              { topic, partition, offset: requested, earliest: earliestOffset, end: endOffset, epoch },
            );
          }
          offset = reset === "earliest" ? earliestOffset : endOffset;
          resets.push({ op: "reset", partition, reason, requested, offset, epoch });
        }
      }
    }
    partitions.push({ partition, offset, epoch, atEnd: offset >= endOffset });
  }
  return { partitions, resets };
}
