/**
 * `Map` and `Set` that allocate their hash table on the first insert. An empty V8 Map or
 * Set costs about 200 bytes (the object plus a table for 4 entries); per-connection state
 * that is usually empty (an idle MQTT client's topic aliases, in-flight messages, shared
 * subscriptions, pending cursors: nine collections) would otherwise cost ~1.8 KB per
 * connection before it did anything. A lazy one costs one small object until used, then
 * behaves exactly like the Map or Set it wraps.
 */
export class LazyMap<K, V> implements Map<K, V> {
  #map: Map<K, V> | null = null;

  get size(): number {
    return this.#map === null ? 0 : this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map === null ? undefined : this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map !== null && this.#map.has(key);
  }

  set(key: K, value: V): this {
    (this.#map ??= new Map()).set(key, value);
    return this;
  }

  delete(key: K): boolean {
    return this.#map !== null && this.#map.delete(key);
  }

  /** Drops the table too: an emptied collection goes back to costing nothing. */
  clear(): void {
    this.#map?.clear(); // ends iterations in progress, as Map.clear does
    this.#map = null;
  }

  forEach(fn: (value: V, key: K, map: Map<K, V>) => void, thisArg?: unknown): void {
    this.#map?.forEach((v, k) => fn.call(thisArg, v, k, this));
  }

  keys(): MapIterator<K> {
    return (this.#map ?? EMPTY_MAP).keys() as MapIterator<K>;
  }

  values(): MapIterator<V> {
    return (this.#map ?? EMPTY_MAP).values() as MapIterator<V>;
  }

  entries(): MapIterator<[K, V]> {
    return (this.#map ?? EMPTY_MAP).entries() as MapIterator<[K, V]>;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return "LazyMap";
  }
}

export class LazySet<T> implements Set<T> {
  #set: Set<T> | null = null;

  get size(): number {
    return this.#set === null ? 0 : this.#set.size;
  }

  has(value: T): boolean {
    return this.#set !== null && this.#set.has(value);
  }

  add(value: T): this {
    (this.#set ??= new Set()).add(value);
    return this;
  }

  delete(value: T): boolean {
    return this.#set !== null && this.#set.delete(value);
  }

  clear(): void {
    this.#set?.clear();
    this.#set = null;
  }

  forEach(fn: (value: T, value2: T, set: Set<T>) => void, thisArg?: unknown): void {
    this.#set?.forEach((v) => fn.call(thisArg, v, v, this));
  }

  keys(): SetIterator<T> {
    return (this.#set ?? EMPTY_SET).keys() as SetIterator<T>;
  }

  values(): SetIterator<T> {
    return (this.#set ?? EMPTY_SET).values() as SetIterator<T>;
  }

  entries(): SetIterator<[T, T]> {
    return (this.#set ?? EMPTY_SET).entries() as SetIterator<[T, T]>;
  }

  [Symbol.iterator](): SetIterator<T> {
    return this.values();
  }

  get [Symbol.toStringTag](): string {
    return "LazySet";
  }
}

const EMPTY_MAP: ReadonlyMap<unknown, unknown> = new Map();
const EMPTY_SET: ReadonlySet<unknown> = new Set();
