// Child process: hosts the simulated backends of the throttling scenario (dist/demo/backends.js)
// in one process, apart from autocannon and from the gateway.
// Usage (forked by run.mjs): backends-host.mjs '<json: [{ name, budgetPerSecond, latencyMs? }]>'
// IPC: sends { type: 'ready', backends: [{ name, url, port }] }; answers { type: 'stats' } with
// { type: 'stats', at, backends: [{ name, served, throttled, received }] }; answers { type: 'timeline' }
// with the counters taken at each wall-clock second boundary (the start of each budget window).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { lifecycle, reportError } from './child-common.mjs';

try {
  const specs = JSON.parse(process.argv[2] ?? '[]');
  const modulePath = join(import.meta.dirname, '..', 'dist', 'demo', 'backends.js');
  if (!existsSync(modulePath)) throw new Error(`${modulePath} does not exist: run "npm run build" first`);
  const { startSimulatedBackend } = await import(pathToFileURL(modulePath).href);
  const backends = [];
  lifecycle(() => Promise.all(backends.map((b) => b.close())));
  for (const spec of specs) backends.push(await startSimulatedBackend({ host: '127.0.0.1', port: 0, ...spec }));

  // Counters at every wall-clock second boundary (the backends' budget windows), so the bench can
  // compute per-window figures: entry { window: W, at, backends } holds the totals at the start of W.
  const timeline = [];
  const snapshot = () => backends.map(({ name, served, throttled, received }) => ({ name, served, throttled, received }));
  const tick = () => {
    const now = Date.now();
    timeline.push({ window: Math.round(now / 1000), at: now, backends: snapshot() });
    if (timeline.length > 600) timeline.shift();
    setTimeout(tick, 1000 - (Date.now() % 1000)).unref();
  };
  setTimeout(tick, 1000 - (Date.now() % 1000)).unref();

  process.on('message', (msg) => {
    if (msg?.type === 'timeline') process.send({ type: 'timeline', timeline });
    if (msg?.type === 'stats') {
      process.send({
        type: 'stats',
        at: Date.now(),
        backends: backends.map(({ name, served, throttled, received }) => ({ name, served, throttled, received })),
      });
    }
  });
  process.send({ type: 'ready', backends: backends.map(({ name, url, port }) => ({ name, url, port })) });
} catch (err) {
  reportError(err);
}
