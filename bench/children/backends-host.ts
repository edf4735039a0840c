// Child process: hosts the simulated backends of the throttling scenario (demo/backends.ts) in one
// process, apart from autocannon and from the gateway.
// Usage (forked by the bench): backends-host.ts '<json: [{ name, budgetPerSecond, latencyMs? }]>'
// IPC: sends { type: 'ready', backends: [{ name, url, port }] }; answers { type: 'stats' } with the
// counters now and { type: 'timeline' } with the counters taken at each wall-clock second boundary.
import { startSimulatedBackend, type SimulatedBackend, type SimulatedBackendOptions } from '../../demo/backends.ts';
import { lifecycle, reportError } from './common.ts';

try {
  const specs = JSON.parse(process.argv[2] ?? '[]') as SimulatedBackendOptions[];
  const backends: SimulatedBackend[] = [];
  lifecycle(() => Promise.all(backends.map((b) => b.close())));
  for (const spec of specs) backends.push(await startSimulatedBackend({ host: '127.0.0.1', port: 0, ...spec }));

  const snapshot = (): { name: string; served: number; throttled: number; received: number }[] =>
    backends.map(({ name, served, throttled, received }) => ({ name, served, throttled, received }));
  // Entry { window: W, at, backends } holds the totals at the start of wall-clock second W.
  const timeline: { window: number; at: number; backends: ReturnType<typeof snapshot> }[] = [];
  const tick = (): void => {
    const now = Date.now();
    timeline.push({ window: Math.round(now / 1000), at: now, backends: snapshot() });
    if (timeline.length > 600) timeline.shift();
    setTimeout(tick, 1000 - (Date.now() % 1000)).unref();
  };
  setTimeout(tick, 1000 - (Date.now() % 1000)).unref();

  process.on('message', (msg: { type?: string } | undefined) => {
    if (msg?.type === 'timeline') process.send!({ type: 'timeline', timeline });
    if (msg?.type === 'stats') process.send!({ type: 'stats', at: Date.now(), backends: snapshot() });
  });
  process.send!({ type: 'ready', backends: backends.map(({ name, url, port }) => ({ name, url, port })) });
} catch (err) {
  reportError(err);
}
