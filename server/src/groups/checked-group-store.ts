import { stateStoreError } from "./group-errors.ts";
import type { GroupState, GroupStore } from "./group-store.ts";

/**
 * The coordinator's view of its `GroupStore`: a failed call is never mistaken for an empty
 * group. It is reported once (`onFailure`, to be logged with the group and operation and
 * counted) and rethrown as a retriable UNAVAILABLE error (or the store's own
 * TributaryError), so the operation that needed the state fails and its caller retries: a
 * join, heartbeat or commit answers UNAVAILABLE, a rebalance round runs again after a backoff.
 */
export class CheckedGroupStore implements GroupStore {
  readonly #store: GroupStore;
  readonly #onFailure: (err: Error, group: string | null) => void;

  constructor(store: GroupStore, onFailure: (err: Error, group: string | null) => void) {
    this.#store = store;
    this.#onFailure = onFailure;
  }

  load(group: string): Promise<GroupState | null> {
    return this.#call(group, "load", () => this.#store.load(group));
  }

  save(state: GroupState): Promise<void> {
    return this.#call(state.group, "save", () => this.#store.save(state));
  }

  delete(group: string): Promise<void> {
    return this.#call(group, "delete", () => this.#store.delete(group));
  }

  list(): Promise<string[]> {
    return this.#call(null, "list", () => this.#store.list());
  }

  async #call<T>(group: string | null, operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = stateStoreError(err, group, operation);
      this.#onFailure(e, group);
      throw e;
    }
  }
}
