// Where cached answers live: the store interface, and the in-process store — an LRU bounded by
// bytes (a Map's insertion order is its recency order), entries dropped once their retention
// passes. Stores outlive reloads (state/cache-registry.ts).

import { storedSize, type StoredValue } from '../cache/entry.js';

/** A store never throws and never makes a request wait long: failures read as misses. */
export interface CacheStore {
  readonly kind: 'memory' | 'redis';
  get(key: string): StoredValue | undefined | Promise<StoredValue | undefined>;
  set(key: string, value: StoredValue, ttlMs: number): void;
  /** Drops every entry whose path + query starts with `prefix`; resolves to how many went. */
  purge(prefix: string): Promise<number>;
  /** What this process holds (memory stores; Redis is not counted). */
  usage?(): { entries: number; bytes: number };
}

interface Slot {
  value: StoredValue;
  size: number;
  expiresAt: number;
}

export class MemoryCacheStore implements CacheStore {
  readonly kind = 'memory';
  readonly #slots = new Map<string, Slot>();
  #bytes = 0;

  constructor(
    public maxBytes: number,
    /** Largest single value; bigger ones are not kept. */
    public maxValueBytes: number,
    readonly clock: () => number = Date.now,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#slots.size;
  }

  usage(): { entries: number; bytes: number } {
    return { entries: this.#slots.size, bytes: this.#bytes };
  }

  get(key: string): StoredValue | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    if (slot.expiresAt <= this.clock()) {
      this.#drop(key, slot);
      return undefined;
    }
    // Most recently used goes to the end.
    this.#slots.delete(key);
    this.#slots.set(key, slot);
    return slot.value;
  }

  set(key: string, value: StoredValue, ttlMs: number): void {
    const old = this.#slots.get(key);
    if (old !== undefined) this.#drop(key, old);
    const size = storedSize(value) + key.length;
    if (ttlMs <= 0 || size > this.maxValueBytes + 4096 || size > this.maxBytes) return;
    this.#slots.set(key, { value, size, expiresAt: this.clock() + ttlMs });
    this.#bytes += size;
    this.#evict();
  }

  /** Shrinks to a new bound (a reload may lower maxSize). */
  resize(maxBytes: number, maxValueBytes: number): void {
    this.maxBytes = maxBytes;
    this.maxValueBytes = maxValueBytes;
    this.#evict();
  }

  async purge(prefix: string): Promise<number> {
    let count = 0;
    for (const [key, slot] of this.#slots) {
      if (slot.value.target.startsWith(prefix)) {
        this.#drop(key, slot);
        count++;
      }
    }
    return count;
  }

  clear(): void {
    this.#slots.clear();
    this.#bytes = 0;
  }

  #evict(): void {
    if (this.#bytes <= this.maxBytes) return;
    const now = this.clock();
    for (const [key, slot] of this.#slots) {
      if (this.#bytes <= this.maxBytes) return;
      // Oldest first; expired ones anywhere would be found by get() later anyway.
      if (slot.expiresAt <= now || this.#bytes > this.maxBytes) this.#drop(key, slot);
    }
  }

  #drop(key: string, slot: Slot): void {
    this.#slots.delete(key);
    this.#bytes -= slot.size;
  }
}
