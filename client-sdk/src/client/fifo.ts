/**
 * A first-in, first-out queue with O(1) `push` and `shift` at any length. `Array#shift`
 * copies the whole array once it is large: a subscription holding ~8,000 buffered messages
 * paid their count on every message it handed out (seen in a connector's profile).
 */
export class Fifo<T> {
  #items: Array<T | undefined> = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) this.clear();
    else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      // Drop the consumed front once it is half the array: amortised O(1) per item.
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  some(test: (item: T) => boolean): boolean {
    for (let i = this.#head; i < this.#items.length; i++) if (test(this.#items[i] as T)) return true;
    return false;
  }

  /** Removes the items `drop` selects, keeping the others in order; returns how many went. */
  removeWhere(drop: (item: T) => boolean): number {
    const kept: T[] = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i] as T;
      if (!drop(item)) kept.push(item);
    }
    const removed = this.length - kept.length;
    this.#items = kept;
    this.#head = 0;
    return removed;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}
