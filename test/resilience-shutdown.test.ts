import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, type TestBackend } from './helpers/backend.js';
import { startCli, writeTempConfig, type CliGateway } from './helpers/gateway.js';
import { httpRequest } from './helpers/http.js';
import { delayed, ok, served, startSwitchable } from './helpers/resilience.js';
import { waitUntil } from './helpers/wait.js';

let clis: CliGateway[] = [];
let backends: TestBackend[] = [];
afterEach(async () => {
  await Promise.all(clis.map((cli) => cli.stop('SIGKILL')));
  await closeAll(...backends);
  clis = [];
  backends = [];
});

async function gatewayFor(backend: TestBackend, drain = '5s'): Promise<CliGateway> {
  const file = await writeTempConfig(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  app:
    backends: [ { url: ${backend.url} } ]
routes:
  - upstream: app
shutdown: { drain: ${drain} }
`);
  const cli = await startCli(file);
  clis.push(cli);
  return cli;
}

function refused(url: string): Promise<boolean> {
  return httpRequest(url).then(
    () => false,
    (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED',
  );
}

describe('graceful shutdown', () => {
  it('SIGTERM during load: in-flight requests complete, new connections are refused, exit 0', async () => {
    const slow = await startSwitchable('slow', delayed(400, ok('slow')));
    backends = [slow];
    const cli = await gatewayFor(slow);
    const inFlight = Array.from({ length: 6 }, () => httpRequest(`${cli.url}/work`));
    await waitUntil(() => served(slow) === 6, { timeout: 10_000, message: 'requests in flight' });
    const exited = cli.stop('SIGTERM');
    await waitUntil(() => refused(`${cli.url}/late`), { timeout: 10_000, message: 'new connections refused' });
    const responses = await Promise.all(inFlight);
    expect(responses.map((r) => r.status)).toEqual(Array(6).fill(200));
    expect(await exited).toBe(0);
  });

  it('SIGINT drains the same way', async () => {
    const slow = await startSwitchable('slow', delayed(300, ok('slow')));
    backends = [slow];
    const cli = await gatewayFor(slow);
    const pending = httpRequest(`${cli.url}/work`);
    await waitUntil(() => served(slow) === 1, { timeout: 10_000, message: 'request in flight' });
    const exited = cli.stop('SIGINT');
    expect((await pending).status).toBe(200);
    expect(await exited).toBe(0);
  });

  it('a rolling restart loses no in-flight request', async () => {
    const app = await startSwitchable('app', delayed(30, ok('app')));
    backends = [app];
    const [oldGateway, newGateway] = [await gatewayFor(app), await gatewayFor(app)];
    // A client-side balancer: the old instance first; a refused connection (or one reset before
    // any response, as load balancers treat it for a GET) goes to the next one.
    const send = async (): Promise<number> => {
      for (const target of [oldGateway, newGateway]) {
        try {
          return (await httpRequest(`${target.url}/orders`)).status;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET') {
            failures.push(`${code}: ${(error as Error).message}`);
            return 0;
          }
        }
      }
      return 0;
    };
    const statuses: number[] = [];
    const failures: string[] = [];
    let running = true;
    const workers = Array.from({ length: 4 }, async () => {
      while (running) statuses.push(await send());
    });
    await waitUntil(() => statuses.length >= 10, { timeout: 10_000, message: 'load before the restart' });
    const exited = oldGateway.stop('SIGTERM');
    const before = statuses.length;
    await exited;
    await waitUntil(() => statuses.length >= before + 10, { timeout: 10_000, message: 'load after the restart' });
    running = false;
    await Promise.all(workers);
    expect(await exited).toBe(0);
    expect(failures).toEqual([]);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });

  it('requests longer than shutdown.drain are cut and the process still exits 0', async () => {
    const stuck = await startSwitchable('stuck', () => new Promise(() => undefined));
    backends = [stuck];
    const cli = await gatewayFor(stuck, '300ms');
    const pending = httpRequest(`${cli.url}/forever`).then(
      (r) => r.status,
      () => 'cut',
    );
    await waitUntil(() => served(stuck) === 1, { timeout: 10_000, message: 'request in flight' });
    const started = Date.now();
    expect(await cli.stop('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await pending).toBe('cut');
  });
});
