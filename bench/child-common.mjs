// Lifecycle shared by the bench's own child processes (origin, fastify proxy, backends host):
// exit when the bench disconnects or dies, stop on SIGTERM/SIGINT, report startup errors over IPC.

export function lifecycle(close) {
  let closing = false;
  const stop = async (code = 0) => {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(code), 3_000);
    force.unref();
    try {
      await close();
    } finally {
      process.exit(code);
    }
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  process.on('disconnect', () => stop(0));
  return stop;
}

export function reportError(err) {
  const message = err instanceof Error ? err.stack ?? err.message : String(err);
  if (process.send) process.send({ type: 'error', message }, () => process.exit(1));
  else {
    console.error(message);
    process.exit(1);
  }
}
