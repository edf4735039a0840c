// `npm run demo`: three simulated Azure OpenAI deployments behind spillway, driven past their
// combined budget so you can watch throttling, failover and spill-over happen.
//
//   primary-a :9001  priority 1   5 req/s
//   primary-b :9002  priority 1   5 req/s
//   spillover :9003  priority 2  10 req/s
//
// The gateway runs as a child process (dist/cli/main.js --config config/demo.yaml), exactly as a
// user would start it. About 25 req/s are sent for ~6 s; the backends can take 20 req/s together,
// so most requests succeed (some after an invisible failover) and the rest get the gateway's own
// 429 with Retry-After. Pass --verbose to see the gateway's log lines.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startSimulatedBackend, type SimulatedBackend } from './backends.ts';

// ---------------------------------------------------------------------------------------------
// Settings

/** Package root: this file is demo/run.ts (run by Node 24 directly, types stripped). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = resolve(ROOT, 'dist', 'cli', 'main.js');
const CONFIG = resolve(ROOT, 'config', 'demo.yaml');

const BACKENDS = [
  { name: 'primary-a', port: 9001, budgetPerSecond: 5, priority: 1 },
  { name: 'primary-b', port: 9002, budgetPerSecond: 5, priority: 1 },
  { name: 'spillover', port: 9003, budgetPerSecond: 10, priority: 2 },
] as const;
const GATEWAY_PORTS = [
  { port: 8080, what: 'the gateway listener (listen.port in config/demo.yaml)' },
  { port: 9901, what: 'the gateway admin listener (admin.port in config/demo.yaml)' },
];

const LOAD_SECONDS = 6;
const REQUESTS_PER_SECOND = 25;
const REQUEST_PATH = '/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21';
const REQUEST_BODY = JSON.stringify({
  messages: [{ role: 'user', content: 'Say hello in three words.' }],
  max_tokens: 16,
});
const STARTUP_TIMEOUT_MS = 8_000;
const REQUEST_TIMEOUT_MS = 4_000;
const SHUTDOWN_TIMEOUT_MS = 3_000;
/** Hard limit for the whole run, whatever happens. */
const WATCHDOG_MS = 19_000;

const verbose = process.argv.includes('--verbose') || process.argv.includes('-v');

// ---------------------------------------------------------------------------------------------
// Small helpers

class DemoError extends Error {}

/** The gateway child, if one is running: the watchdog kills it before giving up. */
let gatewayChild: ChildProcess | undefined;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function httpCall(url: string, opts: { method?: string; body?: string; onChunk?: (text: string) => void } = {}): Promise<Reply> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      url,
      {
        agent,
        method: opts.method ?? 'GET',
        headers:
          opts.body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(opts.body), 'api-key': 'demo' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          body += text;
          opts.onChunk?.(text);
        });
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Resolves if 127.0.0.1:port can be bound right now; rejects with a message naming the port otherwise. */
function ensurePortFree(port: number, what: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      const reason = err.code === 'EADDRINUSE' ? 'is already in use' : `cannot be used (${err.code ?? err.message})`;
      reject(
        new DemoError(
          `port ${port} ${reason}; the demo needs it for ${what}.\n` +
            `  Stop whatever is listening there (try: lsof -i :${port}) and run the demo again.`,
        ),
      );
    });
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolvePromise()));
  });
}

function table(headers: string[], rows: (string | number)[][], alignRight: boolean[] = []): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    '  ' +
    r
      .map((c, i) => (alignRight[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), `  ${widths.map((w) => '-'.repeat(w)).join('  ')}`, ...cells.slice(1).map(line)].join('\n');
}

function heading(text: string): void {
  console.log(`\n== ${text} ${'='.repeat(Math.max(0, 72 - text.length))}`);
}

// ---------------------------------------------------------------------------------------------
// The gateway child process

interface Gateway {
  child: ChildProcess;
  url: string;
  admin: string;
  /** Last log lines, shown if something goes wrong. */
  recent: string[];
}

function startGateway(): Promise<Gateway> {
  if (!existsSync(CLI)) {
    throw new DemoError(`${CLI} does not exist. Build first: npm run build (or use npm run demo, which builds).`);
  }
  const child = spawn(process.execPath, [CLI, '--config', CONFIG], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  gatewayChild = child;
  const recent: string[] = [];
  const remember = (line: string): void => {
    recent.push(line);
    if (recent.length > 30) recent.shift();
    if (verbose) console.log(`  [gateway] ${line}`);
  };
  createInterface({ input: child.stderr! }).on('line', remember);

  return new Promise<Gateway>((resolvePromise, reject) => {
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const tail = recent.length > 0 ? `\n  Last gateway output:\n    ${recent.join('\n    ')}` : '';
      reject(new DemoError(message + tail));
    };
    const timer = setTimeout(
      () => fail(`the gateway did not print "spillway listening" within ${STARTUP_TIMEOUT_MS / 1000} s.`),
      STARTUP_TIMEOUT_MS,
    );
    child.once('error', (err) => fail(`could not start the gateway: ${err.message}`));
    child.once('exit', (code, signal) => fail(`the gateway exited during startup (${signal ? `signal ${signal}` : `exit code ${code}`}).`));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      remember(line);
      if (settled || !line.includes('spillway listening')) return;
      let entry: { msg?: unknown; url?: unknown; admin?: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.msg !== 'spillway listening') return;
      settled = true;
      clearTimeout(timer);
      resolvePromise({
        child,
        url: typeof entry.url === 'string' ? entry.url : 'http://127.0.0.1:8080',
        admin: typeof entry.admin === 'string' ? entry.admin : 'http://127.0.0.1:9901',
        recent,
      });
    });
  });
}

async function stopGateway(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const exited = new Promise<number | string | null>((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  child.kill('SIGTERM');
  const result = await Promise.race([exited, sleep(SHUTDOWN_TIMEOUT_MS).then(() => 'timeout' as const)]);
  if (result !== 'timeout') return result;
  child.kill('SIGKILL');
  await exited;
  return 'killed after timeout';
}

// ---------------------------------------------------------------------------------------------
// The run

interface Totals {
  sent: number;
  ok: number;
  gateway429: number;
  passed429: number;
  other: number;
  errors: number;
  byBackend: Map<string, number>;
  retryAfter: Set<string>;
}

async function streamOnce(gatewayUrl: string): Promise<void> {
  heading('One streaming request (stream: true), printed chunk by chunk');
  const started = Date.now();
  let pending = '';
  const print = (event: string): void => {
    const data = event.replace(/^data: ?/, '');
    const at = `+${String(Date.now() - started).padStart(4)} ms`;
    if (data === '[DONE]') {
      console.log(`  ${at}  [DONE]`);
      return;
    }
    try {
      const chunk = JSON.parse(data) as { backend?: string; choices?: { delta?: { content?: string } }[] };
      console.log(`  ${at}  delta ${JSON.stringify(chunk.choices?.[0]?.delta?.content ?? '')}  (from ${chunk.backend ?? '?'})`);
    } catch {
      console.log(`  ${at}  ${data.slice(0, 100)}`);
    }
  };
  try {
    const reply = await httpCall(gatewayUrl + REQUEST_PATH, {
      method: 'POST',
      body: JSON.stringify({ ...(JSON.parse(REQUEST_BODY) as object), stream: true }),
      onChunk: (text) => {
        pending += text;
        let end: number;
        while ((end = pending.indexOf('\n\n')) >= 0) {
          const event = pending.slice(0, end).trim();
          pending = pending.slice(end + 2);
          if (event) print(event);
        }
      },
    });
    if (pending.trim()) print(pending.trim());
    console.log(`  status ${reply.status}, content-type ${reply.headers['content-type'] ?? '-'}`);
  } catch (err) {
    console.log(`  streaming request failed: ${(err as Error).message}`);
  }
}

async function drive(gatewayUrl: string): Promise<Totals> {
  heading(`Load: ~${REQUESTS_PER_SECOND} req/s for ${LOAD_SECONDS} s (backends can take 20 req/s together)`);
  const totals: Totals = {
    sent: 0,
    ok: 0,
    gateway429: 0,
    passed429: 0,
    other: 0,
    errors: 0,
    byBackend: new Map(),
    retryAfter: new Set(),
  };
  const inFlight = new Set<Promise<void>>();
  const interval = 1000 / REQUESTS_PER_SECOND;
  const total = LOAD_SECONDS * REQUESTS_PER_SECOND;
  const started = Date.now();
  let last = { ok: 0, t429: 0, other: 0 };

  console.log(table(['second', 'sent', '2xx', '429', 'other'], [], [false, true, true, true, true]));
  const progress = (second: number): void => {
    const now = { ok: totals.ok, t429: totals.gateway429 + totals.passed429, other: totals.other + totals.errors };
    const row = [`${second}`, REQUESTS_PER_SECOND, now.ok - last.ok, now.t429 - last.t429, now.other - last.other];
    last = now;
    console.log(
      `  ${String(row[0]).padEnd(6)}  ${String(row[1]).padStart(4)}  ${String(row[2]).padStart(3)}  ${String(row[3]).padStart(3)}  ${String(row[4]).padStart(5)}`,
    );
  };

  for (let i = 0; i < total; i++) {
    await sleep(started + i * interval - Date.now());
    if (i > 0 && i % REQUESTS_PER_SECOND === 0) progress(i / REQUESTS_PER_SECOND);
    totals.sent++;
    const call = httpCall(gatewayUrl + REQUEST_PATH, { method: 'POST', body: REQUEST_BODY })
      .then((reply) => {
        if (reply.status >= 200 && reply.status < 300) {
          totals.ok++;
          try {
            const name = (JSON.parse(reply.body) as { backend?: string }).backend ?? '?';
            totals.byBackend.set(name, (totals.byBackend.get(name) ?? 0) + 1);
          } catch {
            /* not JSON: still a 2xx */
          }
        } else if (reply.status === 429) {
          // The gateway's own 429 is problem+json; anything else was passed through from a backend.
          if (String(reply.headers['content-type'] ?? '').includes('problem+json')) totals.gateway429++;
          else totals.passed429++;
          const hint = reply.headers['retry-after'];
          if (typeof hint === 'string') totals.retryAfter.add(hint);
        } else {
          totals.other++;
        }
      })
      .catch(() => {
        totals.errors++;
      });
    const tracked: Promise<void> = call.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  // Let the last requests finish (each is bounded by REQUEST_TIMEOUT_MS).
  await Promise.race([Promise.all(inFlight), sleep(REQUEST_TIMEOUT_MS + 500)]);
  progress(LOAD_SECONDS);
  return totals;
}

interface AdminBackend {
  url?: string;
  priority?: number;
  weight?: number;
  state?: string;
  cooldownUntil?: string | null;
  inFlight?: number;
  requests?: number;
  throttled?: number;
  errors?: number;
}

async function adminSummary(adminUrl: string): Promise<Map<string, AdminBackend>> {
  const byUrl = new Map<string, AdminBackend>();
  heading("GET /admin/upstreams (the gateway's own view)");
  let reply: Reply;
  try {
    reply = await httpCall(`${adminUrl}/admin/upstreams`);
  } catch (err) {
    console.log(`  request failed: ${(err as Error).message}`);
    return byUrl;
  }
  try {
    const json = JSON.parse(reply.body) as {
      upstreams?: Record<string, { balance?: string; backends?: AdminBackend[] }>;
    };
    const rows: (string | number)[][] = [];
    for (const [name, upstream] of Object.entries(json.upstreams ?? {})) {
      for (const b of upstream.backends ?? []) {
        if (b.url) byUrl.set(b.url.replace(/\/$/, ''), b);
        const cooling = b.cooldownUntil ? `until ${b.cooldownUntil.slice(11, 23)}` : '-';
        rows.push([
          `${name} (${upstream.balance ?? '?'})`,
          b.url ?? '?',
          b.priority ?? '-',
          b.state ?? '?',
          cooling,
          b.requests ?? '-',
          b.throttled ?? '-',
          b.errors ?? '-',
        ]);
      }
    }
    if (rows.length === 0) throw new Error('no backends listed');
    console.log(
      table(['upstream', 'backend', 'prio', 'state', 'cooldown', 'requests', 'throttled', 'errors'], rows, [
        false,
        false,
        true,
        false,
        false,
        true,
        true,
        true,
      ]),
    );
  } catch {
    console.log(`  status ${reply.status}: ${reply.body.slice(0, 2000)}`);
  }
  return byUrl;
}

async function main(): Promise<number> {
  console.log('spillway demo: three simulated Azure OpenAI deployments behind one gateway');
  console.log(`  package root ${ROOT}`);

  for (const b of BACKENDS) await ensurePortFree(b.port, `simulated backend ${b.name}`);
  for (const g of GATEWAY_PORTS) await ensurePortFree(g.port, g.what);

  const backends: SimulatedBackend[] = [];
  let gateway: Gateway | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> => (cleaning ??= doCleanup());
  const doCleanup = async (): Promise<void> => {
    if (gateway) {
      const result = await stopGateway(gateway.child);
      console.log(`\n  gateway stopped (SIGTERM -> ${result === 0 ? 'exit 0' : String(result)})`);
    }
    await Promise.all(backends.map((b) => b.close()));
    agent.destroy();
  };
  process.once('SIGINT', () => {
    void cleanup().finally(() => process.exit(130));
  });

  try {
    for (const b of BACKENDS) {
      backends.push(await startSimulatedBackend({ name: b.name, port: b.port, budgetPerSecond: b.budgetPerSecond }));
    }
    heading('Backends');
    console.log(
      table(
        ['name', 'url', 'priority', 'budget'],
        BACKENDS.map((b, i) => [b.name, backends[i]!.url, b.priority, `${b.budgetPerSecond} req/s`]),
        [false, false, true, true],
      ),
    );

    gateway = await startGateway();
    heading('Gateway');
    console.log(`  started: ${process.execPath} ${CLI} --config ${CONFIG}`);
    console.log(`  proxy ${gateway.url}    admin ${gateway.admin}`);
    console.log(`  live console ${gateway.admin}/console   (open it in a browser to watch the spill while the load runs;`);
    console.log(`  in a terminal: node dist/cli/main.js status --watch --admin ${gateway.admin})`);

    await streamOnce(gateway.url);
    // Begin the load at a fresh wall-clock second, when every backend has its whole budget.
    await sleep(1000 - (Date.now() % 1000) + 5);
    const totals = await drive(gateway.url);

    const admin = await adminSummary(gateway.admin);

    heading('Backends (what each simulated deployment saw)');
    console.log(
      table(
        ['backend', 'priority', 'budget', 'received', 'served', 'throttled-to-gateway'],
        BACKENDS.map((b, i) => {
          const live = backends[i]!;
          const priority = admin.get(live.url)?.priority ?? b.priority;
          return [b.name, priority, `${b.budgetPerSecond}/s`, live.received, live.served, live.throttled];
        }),
        [false, true, true, true, true, true],
      ),
    );

    heading('Client side (what callers of the gateway saw)');
    const rows: (string | number)[][] = [
      ['requests sent', totals.sent],
      ['2xx', totals.ok],
      ['429 from gateway (all backends cooling)', totals.gateway429],
    ];
    if (totals.passed429 > 0) rows.push(['429 passed through from a backend', totals.passed429]);
    rows.push(['other status', totals.other], ['network errors / timeouts', totals.errors]);
    console.log(table(['', 'count'], rows, [false, true]));
    const served = [...totals.byBackend.entries()].map(([name, n]) => `${name} ${n}`).join(', ');
    if (served) console.log(`  2xx answered by: ${served}`);
    if (totals.retryAfter.size > 0) console.log(`  Retry-After values the gateway sent: ${[...totals.retryAfter].sort().join(', ')} s`);
    const backend429 = backends.reduce((n, b) => n + b.throttled, 0);
    const explanation = [
      `The backends answered 429 ${backend429} times. Each time, the gateway parked that backend`,
      `until its retry hint ran out and sent the same request on to another backend`,
      totals.passed429 === 0 ? `at once, so none of those 429s reached a client.` : `at once.`,
      `The ${totals.gateway429} 429s that clients did see came from the gateway itself, while every`,
      `backend was cooling down, with a Retry-After saying when to come back.`,
    ];
    console.log(`\n  ${explanation.join('\n  ')}`);

    if (totals.ok === 0) {
      console.error('\ndemo failed: no request succeeded through the gateway.');
      if (gateway.recent.length > 0) console.error(`  Last gateway output:\n    ${gateway.recent.join('\n    ')}`);
      return 1;
    }
    return 0;
  } finally {
    await cleanup();
  }
}

const watchdog = setTimeout(() => {
  console.error(`\ndemo aborted: it did not finish within ${WATCHDOG_MS / 1000} s.`);
  if (gatewayChild && gatewayChild.exitCode === null && gatewayChild.signalCode === null) gatewayChild.kill('SIGKILL');
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof DemoError) console.error(`\ndemo failed: ${err.message}`);
    else console.error('\ndemo failed:', err);
    process.exit(1);
  },
);
