import { buildConnector, Pool } from 'undici';
import { tlsKey, type BackendTls } from './backend-tls.js';
import { withInterimContinueDropped } from './interim-continue.js';

export interface DispatcherOptions {
  connectTimeout: number;
  headersTimeout: number;
  bodyTimeout: number;
  /** TLS settings for https origins (CA, verification); SNI is sent per request. */
  tls?: BackendTls | undefined;
}

/**
 * One keep-alive undici Pool per backend origin, connection and TLS settings. Pools outlive
 * config snapshots: a reload that keeps a backend keeps its warm connections. Two backends on
 * one origin (two deployments of one host) share a pool but never share state: state is keyed
 * per backend entry (backend-state.ts). undici's connector caches TLS sessions per SNI name,
 * so new connections to a known host resume their session instead of a full handshake.
 */
export class DispatcherRegistry {
  readonly #pools = new Map<string, Pool>();

  get(origin: string, options: DispatcherOptions): { key: string; pool: Pool } {
    const { tls } = options;
    const key = `${origin}|${options.connectTimeout}|${options.headersTimeout}|${options.bodyTimeout}|${tlsKey(tls)}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new Pool(origin, {
        connect: withInterimContinueDropped(
          buildConnector({
            timeout: options.connectTimeout,
            ...(tls ? { rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca ? { ca: tls.ca } : {}) } : {}),
          }),
        ),
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
