/**
 * The client commands' view of a node's HTTP API (docs/http-api.md): one method per
 * call, errors as TributaryError with the server's code (or UNAVAILABLE when the server
 * cannot be reached), so the CLI maps them to exit codes.
 */
import { TributaryError, isTributaryError } from "../errors.ts";
import { isErrorCode } from "@tributary/client/codes";
import type { ClusterStatus } from "../cluster/node-registry.ts";
import type { GroupDescription, GroupListing, ResetOffsetsResult } from "../groups/group-coordinator.ts";
import type { ResetTarget } from "../groups/offsets.ts";

export const DEFAULT_URL = "http://127.0.0.1:8080";

export interface TopicDescriptionJson {
  name: string;
  partitions: number;
  replicationFactor: number;
  retentionMs: number | null;
  retentionBytes: number | null;
  cleanupPolicy: string;
  /** Compacted topics: how long tombstones are kept (servers before compaction omit it). */
  deleteRetentionMs?: number;
  minCleanableDirtyRatio?: number;
  createdAt: number;
  partitionInfo: Array<{ partition: number; earliestOffset: number; endOffset: number; epoch: string }>;
}

export type BytesJson = string | { base64: string } | null;

export interface RecordJson {
  offset: number;
  timestamp: number;
  key: BytesJson;
  value: BytesJson;
  headers: Record<string, BytesJson>;
}

export interface ReadResult {
  topic: string;
  partition: number;
  epoch: string;
  earliestOffset: number;
  endOffset: number;
  nextOffset: number;
  records: RecordJson[];
}

export interface ProduceBody {
  records: Array<{ key?: string | null; value: string | null; partition?: number }>;
  acks?: 0 | 1 | "all";
  producerId?: string;
  sequence?: number;
}

/** Validates `--url` / TRIBUTARY_URL: BAD_REQUEST (exit 2) when it is not an http(s) URL. */
export function parseServerUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TributaryError("BAD_REQUEST", `--url: expected an http(s) URL like ${DEFAULT_URL}, got "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TributaryError("BAD_REQUEST", `--url: expected an http:// or https:// URL, got "${raw}"`);
  }
  return url.href.replace(/\/+$/, "");
}

export class ApiClient {
  readonly #token: string | undefined;

  /** `token`: a JWT sent as `Authorization: Bearer` with every request (nodes with auth). */
  constructor(
    readonly baseUrl: string,
    token?: string,
  ) {
    this.#token = token;
  }

  listTopics(internal = false): Promise<{ topics: string[] }> {
    return this.#call("GET", internal ? "/topics?internal=true" : "/topics");
  }

  createTopic(body: Record<string, unknown>): Promise<TopicDescriptionJson> {
    return this.#call("POST", "/topics", body);
  }

  describeTopic(topic: string): Promise<TopicDescriptionJson> {
    return this.#call("GET", `/topics/${encodeURIComponent(topic)}`);
  }

  deleteTopic(topic: string): Promise<void> {
    return this.#call("DELETE", `/topics/${encodeURIComponent(topic)}`);
  }

  produce(topic: string, body: ProduceBody): Promise<{ offsets?: Array<{ partition: number; offset: number }> }> {
    return this.#call("POST", `/topics/${encodeURIComponent(topic)}/records`, body);
  }

  read(topic: string, partition: number, query: { offset: number | "earliest" | "latest"; max?: number; waitMs?: number }, signal?: AbortSignal): Promise<ReadResult> {
    const params = new URLSearchParams({ offset: String(query.offset) });
    if (query.max !== undefined) params.set("max", String(query.max));
    if (query.waitMs !== undefined) params.set("waitMs", String(query.waitMs));
    return this.#call("GET", `/topics/${encodeURIComponent(topic)}/partitions/${partition}/records?${params}`, undefined, signal);
  }

  clusterStatus(): Promise<ClusterStatus> {
    return this.#call("GET", "/cluster");
  }

  listGroups(internal = false): Promise<{ groups: GroupListing[] }> {
    return this.#call("GET", internal ? "/groups?internal=true" : "/groups");
  }

  describeGroup(group: string): Promise<GroupDescription> {
    return this.#call("GET", `/groups/${encodeURIComponent(group)}`);
  }

  resetGroupOffsets(group: string, body: { topic: string; to: ResetTarget; partitions?: number[] }): Promise<ResetOffsetsResult> {
    return this.#call("POST", `/groups/${encodeURIComponent(group)}/reset-offsets`, body);
  }

  async #call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new TributaryError(
        "UNAVAILABLE",
        `cannot reach the Tributary server at ${this.baseUrl} (${cause?.code ?? cause?.message ?? (err as Error).message}); is it running? Use --url or TRIBUTARY_URL to point elsewhere`,
        { url: this.baseUrl },
        { cause: err },
      );
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      if (error && isErrorCode(error.code)) throw new TributaryError(error.code, String(error.message), { status: response.status });
      throw new TributaryError("INTERNAL", `the server answered ${method} ${path} with HTTP ${response.status}: ${text.slice(0, 200)}`, { status: response.status });
    }
    return json as T;
  }
}

/** True for errors worth retrying with the same request (network, retriable codes). */
export function isRetriable(err: unknown): boolean {
  return isTributaryError(err) && err.retriable;
}
