// Lifecycle shared by the bench's own child processes (origin, fastify proxy, backends host, OTLP sink):
// exit when the bench disconnects or dies, stop on SIGTERM/SIGINT, report startup errors over IPC.

export function lifecycle(close: () => Promise<unknown>): (code?: number) => Promise<void> {
  let closing = false;
  const stop = async (code = 0): Promise<void> => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(code), 3_000).unref();
    try {
      await close();
    } finally {
      process.exit(code);
    }
  };
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => void stop(0));
  process.on('disconnect', () => void stop(0));
  return stop;
}

export function reportError(err: unknown): void {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (process.send) process.send({ type: 'error', message }, () => process.exit(1));
  else {
    console.error(message);
    process.exit(1);
  }
}

/** Port of a listening server. */
export const portOf = (address: unknown): number => (address as { port: number }).port;
