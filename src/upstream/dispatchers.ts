import { Pool } from 'undici';

export interface DispatcherOptions {
  connectTimeout: number;
  headersTimeout: number;
  bodyTimeout: number;
}

/**
 * One keep-alive undici Pool per backend origin and connection settings. Pools outlive config
 * snapshots: a reload that keeps a backend keeps its warm connections.
 */
export class DispatcherRegistry {
  readonly #pools = new Map<string, Pool>();

  get(origin: string, options: DispatcherOptions): { key: string; pool: Pool } {
    const key = `${origin}|${options.connectTimeout}|${options.headersTimeout}|${options.bodyTimeout}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new Pool(origin, {
        connect: { timeout: options.connectTimeout },
        headersTimeout: options.headersTimeout,
        bodyTimeout: options.bodyTimeout,
        keepAliveTimeout: 10_000,
        keepAliveMaxTimeout: 60_000,
      });
      this.#pools.set(key, pool);
    }
    return { key, pool };
  }

  /** Closes pools no snapshot uses any more (after in-flight requests finish). */
  async retain(keys: ReadonlySet<string>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, pool] of this.#pools) {
      if (keys.has(key)) continue;
      this.#pools.delete(key);
      closing.push(pool.close().catch(() => undefined));
    }
    await Promise.all(closing);
  }

  async closeAll(): Promise<void> {
    await this.retain(new Set());
  }
}
