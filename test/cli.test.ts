import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, startBackend, startStaticBackend, type TestBackend } from './helpers/backend.js';
import { runCli, startCli, writeTempConfig, type CliGateway } from './helpers/gateway.js';

let cli: CliGateway | undefined;
let backends: TestBackend[] = [];
afterEach(async () => {
  await cli?.stop('SIGKILL');
  await closeAll(...backends);
  cli = undefined;
  backends = [];
});

describe('spillway --config FILE', () => {
  it('serves, reports readiness and backend state on the admin port, and stops with exit 0 on SIGTERM', async () => {
    const busy = await startStaticBackend(429, { 'retry-after-ms': '60000' });
    const ok = await startBackend(undefined, 'ok');
    backends = [busy, ok];
    const file = await writeTempConfig(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  llm:
    backends:
      - { url: "\${BUSY_URL}", priority: 1 }
      - { url: ${ok.url}, priority: 2 }
routes:
  - match: { path: /v1/ }
    upstream: llm
`);
    cli = await startCli(file, { BUSY_URL: busy.url });
    expect((await fetch(`${cli.adminUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${cli.adminUrl}/readyz`)).json()).toMatchObject({ status: 'ready' });

    const res = await fetch(`${cli.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(200);
    const view = (await (await fetch(`${cli.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: { llm: { backends: Array<Record<string, unknown>> } };
    };
    expect(view.upstreams.llm.backends[0]).toMatchObject({ url: busy.url, state: 'cooling', throttled: 1, requests: 1 });
    expect(view.upstreams.llm.backends[1]).toMatchObject({ url: ok.url, state: 'ready', requests: 1, inFlight: 0 });
    expect(cli.lines.some((line) => line.event === 'backend.cooldown' && line.source === 'retry-after-ms')).toBe(true);

    expect(await cli.stop('SIGTERM')).toBe(0);
  });

  it('finishes a request in flight when SIGTERM arrives', async () => {
    const slow = await startBackend(async (_req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 600));
      res.end('done');
    });
    backends = [slow];
    const file = await writeTempConfig(
      `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nupstreams:\n  app:\n    backends: [ { url: ${slow.url} } ]\nroutes:\n  - upstream: app\n`,
    );
    cli = await startCli(file);
    const pending = fetch(`${cli.url}/work`);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const stopped = cli.stop('SIGTERM');
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('done');
    expect(await stopped).toBe(0);
  });

  it('refuses to start on an invalid file, with the error and exit 1', async () => {
    const file = await writeTempConfig('upstreams: {}\nroutes:\n  - upstream: ghost\n');
    const result = await runCli(['--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('routes[0].upstream: unknown upstream "ghost"');
  });

  it('exits 1 with a clear log line when the port is taken', async () => {
    const taken = await startBackend();
    backends = [taken];
    const file = await writeTempConfig(
      `listen: { host: 127.0.0.1, port: ${taken.port} }\nadmin: { host: 127.0.0.1, port: 0 }\nupstreams:\n  app:\n    backends: [ { url: ${taken.url} } ]\nroutes:\n  - upstream: app\n`,
    );
    const result = await runCli(['--config', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('EADDRINUSE');
  });

  it('unknown commands and --help', async () => {
    expect((await runCli(['frobnicate'])).code).toBe(2);
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('spillway check --config FILE');
  });
});
