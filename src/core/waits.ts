// Bounded waits on a store connection: a command that must answer within a time, and a first
// connection that is waited for at start, but never for longer than a bound.

/**
 * Rejects when `promise` has not settled within `ms`. The verdict waits for the check phase of
 * the event loop (setImmediate) after the timer fires: when the loop itself was late (a busy
 * process), a reply already read from the socket in that same turn still counts — only the store
 * being slow is a timeout, not the gateway being busy.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what = 'command'): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new Error(`${what}: no answer within ${ms} ms`));
      });
    }, ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** A client that says when it is connected (ioredis' Redis and Cluster). */
export interface ReadyingClient {
  readonly status: string;
  once(event: 'ready', listener: () => void): unknown;
}

/** Resolves once `client` is ready, or after `timeoutMs` whatever its state. */
export async function whenReady(client: ReadyingClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
