// In-process idempotency store, bounded by bytes: least recently used records go first when the
// total passes the limit, so 100k distinct keys (or a flood of them) cannot grow the heap without
// bound. Expired records are dropped when met, and by the LRU in time.

import { type BeginResult, type IdempotencyStore, leaseToken, type StoredAnswer } from './store.js';

interface Lease {
  readonly kind: 'lease';
  readonly token: string;
  readonly fingerprint: string;
  readonly until: number;
  readonly bytes: number;
}

interface Done {
  readonly kind: 'done';
  readonly fingerprint: string;
  readonly answer: StoredAnswer;
  readonly until: number;
  readonly bytes: number;
}

type Record = Lease | Done;

/** Map, key, fingerprint, token and bookkeeping per record, roughly. */
const OVERHEAD = 200;

export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #records = new Map<string, Record>();
  bytes = 0;

  constructor(
    public maxBytes: number,
    private readonly clock: () => number = Date.now,
  ) {}

  get size(): number {
    return this.#records.size;
  }

  begin(key: string, fingerprint: string, leaseMs: number): Promise<BeginResult> {
    const now = this.clock();
    const record = this.#get(key, now);
    if (record?.kind === 'lease')
      return Promise.resolve({ kind: 'in-flight', fingerprint: record.fingerprint, leaseLeftMs: record.until - now });
    if (record?.kind === 'done') return Promise.resolve({ kind: 'done', fingerprint: record.fingerprint, answer: record.answer });
    const token = leaseToken();
    this.#set(key, { kind: 'lease', token, fingerprint, until: now + leaseMs, bytes: OVERHEAD + key.length * 2 });
    return Promise.resolve({ kind: 'acquired', token });
  }

  complete(key: string, token: string, fingerprint: string, answer: StoredAnswer, ttlMs: number): Promise<void> {
    const now = this.clock();
    const record = this.#get(key, now);
    if (record === undefined || (record.kind === 'lease' && record.token === token)) {
      let bytes = OVERHEAD + key.length * 2 + answer.body.length;
      for (const [name, value] of answer.headers) bytes += (name.length + value.length) * 2 + 32;
      this.#set(key, { kind: 'done', fingerprint, answer, until: now + ttlMs, bytes });
    }
    return Promise.resolve();
  }

  release(key: string, token: string): Promise<void> {
    const record = this.#records.get(key);
    if (record?.kind === 'lease' && record.token === token) this.#delete(key, record);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#records.clear();
    this.bytes = 0;
    return Promise.resolve();
  }

  #get(key: string, now: number): Record | undefined {
    const record = this.#records.get(key);
    if (record === undefined) return undefined;
    if (record.until <= now) {
      this.#delete(key, record);
      return undefined;
    }
    // Most recently used goes to the end.
    this.#records.delete(key);
    this.#records.set(key, record);
    return record;
  }

  #set(key: string, record: Record): void {
    const old = this.#records.get(key);
    if (old !== undefined) this.#delete(key, old);
    this.#records.set(key, record);
    this.bytes += record.bytes;
    for (const [oldest, victim] of this.#records) {
      if (this.bytes <= this.maxBytes || oldest === key) break;
      this.#delete(oldest, victim);
    }
  }

  #delete(key: string, record: Record): void {
    this.#records.delete(key);
    this.bytes -= record.bytes;
  }
}
