import type { ResetPolicy } from "@tributary/client/protocol";
import type { ErrorCode } from "../../errors.ts";
import type { PartitionCursor } from "./partition-cursor.ts";
import type { KeyFilter } from "./topic-filter.ts";
import type { WsConnection } from "./ws-connection.ts";

/**
 * One client subscription (`sub`): a log topic, an optional key filter, a reset policy, a
 * credit window shared by its partitions, and one cursor per partition.
 *
 * Credit counts messages the server may still send before the client grants more with a
 * `credit` frame; at 0, every cursor of the subscription stops pulling from the log (its
 * tail waits) and resumes on the next grant. Credit never exceeds `maxCredit`.
 */
export class WsSubscription {
  readonly id: number;
  readonly conn: WsConnection;
  /** The log topic. */
  readonly topic: string;
  /** The topic or filter as the client wrote it. */
  readonly spec: string;
  readonly filter: KeyFilter | null;
  readonly reset: ResetPolicy;
  readonly maxCredit: number;
  credit: number;
  /** False once stopped (unsubscribe, error, connection closed). */
  active = true;
  /** Cursors start after `subscribed` is sent; empty while the subscription resolves. */
  cursors: PartitionCursor[] = [];
  /** Called once when the subscription stops (presence bookkeeping). */
  onStop: (() => void) | null = null;
  #waiters: (() => void)[] = [];

  constructor(init: {
    id: number;
    conn: WsConnection;
    topic: string;
    spec: string;
    filter: KeyFilter | null;
    reset: ResetPolicy;
    credit: number;
    maxCredit: number;
  }) {
    this.id = init.id;
    this.conn = init.conn;
    this.topic = init.topic;
    this.spec = init.spec;
    this.filter = init.filter;
    this.reset = init.reset;
    this.maxCredit = init.maxCredit;
    this.credit = Math.min(init.credit, init.maxCredit);
  }

  /** True when a message may be sent now: active, credit left, socket not paused. */
  get canDeliver(): boolean {
    return this.active && this.credit > 0 && this.conn.canWrite;
  }

  /** Waits until `canDeliver` or the subscription/connection stopped. */
  async whenReady(): Promise<void> {
    while (this.active && this.conn.open && !this.canDeliver) {
      if (this.credit <= 0) await new Promise<void>((resolve) => this.#waiters.push(resolve));
      else await this.conn.whenWritable();
    }
  }

  addCredit(n: number): void {
    this.credit = Math.min(this.maxCredit, this.credit + n);
    if (this.credit > 0) this.#wake();
  }

  /** Stops delivery for good. Idempotent. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    for (const cursor of this.cursors) cursor.stop();
    this.#wake();
    const onStop = this.onStop;
    this.onStop = null;
    onStop?.();
  }

  /** Ends the subscription with an error frame naming it (e.g. OFFSET_OUT_OF_RANGE under policy "error"). */
  fail(code: ErrorCode, message: string): void {
    if (!this.active) return;
    this.stop();
    if (this.conn.subscriptions.get(this.id) === this) this.conn.subscriptions.delete(this.id);
    this.conn.sendError(code, message, { sub: this.id });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
