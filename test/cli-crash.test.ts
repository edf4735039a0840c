// An uncaught exception in the running CLI: logged, in-flight requests drained, exit non-zero so
// the supervisor restarts it. The exception is thrown by a preloaded module on SIGUSR2, the way
// a defect would throw from a timer or an event handler outside any request.

import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBackend } from './helpers/backend.js';
import { startCli, writeTempConfig } from './helpers/gateway.js';
import { httpRequest } from './helpers/http.js';
import { perTest } from './helpers/per-test.js';
import { sleep, waitUntil } from './helpers/wait.js';

const live = perTest();

describe('uncaughtException in the CLI', () => {
  it('logs it, lets the request in flight finish, refuses new work and exits non-zero', async () => {
    const app = await startBackend(async (_req, res) => {
      await sleep(600);
      res.end('finished');
    });
    live.backend = app;
    const file = await writeTempConfig(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
shutdown: { drain: 5s }
upstreams:
  app:
    backends: [ { url: ${app.url} } ]
routes:
  - upstream: app
`);
    const crash = join(dirname(file), 'crash-on-usr2.mjs');
    await writeFile(crash, "process.on('SIGUSR2', () => setImmediate(() => { throw new Error('defect outside any request'); }));\n");
    const cli = await startCli(file, { NODE_OPTIONS: `--import=${crash}` });
    const exited = new Promise<number | null>((resolve) => cli.child.once('exit', (code) => resolve(code)));
    const inFlight = fetch(`${cli.url}/slow`).then(async (response) => ({ status: response.status, body: await response.text() }));
    await waitUntil(() => app.received.length === 1 || undefined, { timeout: 5_000 }).catch(() => undefined);
    await sleep(100);
    cli.child.kill('SIGUSR2');
    await sleep(150);
    await expect(httpRequest(`${cli.url}/new`)).rejects.toThrow();
    expect(await inFlight).toEqual({ status: 200, body: 'finished' });
    expect(await exited).toBe(70);
    const crashLine = cli.lines.find((line) => line.event === 'process.crash');
    expect(crashLine).toMatchObject({ level: 60 });
    expect(JSON.stringify(crashLine)).toContain('defect outside any request');
  });
});
