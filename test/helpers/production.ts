// What the production image runs, for the package tests: a clean child environment, and the
// packaged CLI started from a directory holding only what ships (dist/, config/, package.json and
// a production-only node_modules), proxying to a local backend.

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** Environment for child processes: no NODE_PATH/NODE_OPTIONS leaking the dev tree, no npm overrides. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_PATH;
  delete env.NODE_OPTIONS;
  for (const key of Object.keys(env)) {
    if (/^npm_config_(omit|include|production|only|dev|also|dry_run|global|prefix|workspaces?|ignore_scripts)$/i.test(key)) {
      delete env[key];
    }
  }
  return env;
}

/** Runs a command to completion with `cleanEnv()`; stdout and stderr together in `output`. */
export function run(
  command: string,
  args: string[],
  opts: { cwd: string; timeoutMs: number },
): Promise<{ code: number | null; output: string; stdout: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output, stdout });
    });
  });
}

/** `npm` as the current npm run uses it (npm_execpath), else the one on PATH. */
export function npm(args: string[], cwd: string, timeoutMs: number) {
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.js$/.test(execPath)) return run(process.execPath, [execPath, ...args], { cwd, timeoutMs });
  return run(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd, timeoutMs });
}

export function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export interface ServedThrough {
  listening: { url: string; admin: string };
  proxied: { status: number; body: string };
  health: { status: number; body: string };
  /** GET /console, /console/app.js and /console/uplot.js on the admin listener. */
  console: Array<{ status: number; body: string }>;
  exit: { code: number | null; signal: NodeJS.Signals | null };
}

/**
 * Starts `node <dir>/dist/cli/main.js` (NODE_ENV=production, clean env) in front of a local
 * backend, sends one request through it, reads /healthz, then SIGTERM; returns what was seen.
 */
export async function serveThroughPackagedGateway(dir: string): Promise<ServedThrough> {
  const backend = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`hello from the backend: ${req.method} ${req.url}`);
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const backendPort = (backend.address() as AddressInfo).port;
  const configFile = join(dir, 'gateway.yaml');
  await writeFile(
    configFile,
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      'admin: { host: 127.0.0.1, port: 0 }',
      'upstreams:',
      '  app:',
      '    backends:',
      `      - url: http://127.0.0.1:${backendPort}`,
      'routes:',
      '  - match: { path: / }',
      '    upstream: app',
      '',
    ].join('\n'),
  );

  const child = spawn(process.execPath, [join(dir, 'dist', 'cli', 'main.js'), '--config', configFile], {
    cwd: dir,
    env: cleanEnv({ NODE_ENV: 'production' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => output.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  try {
    const listening = await new Promise<{ url: string; admin: string }>((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "spillway listening" line within 15 s:\n${output.join('\n')}`)), 15_000);
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited early (${code ?? signal}):\n${output.join('\n')}`));
      });
      createInterface({ input: child.stdout }).on('line', (line) => {
        output.push(line);
        if (!line.includes('spillway listening')) return;
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string; admin?: string };
          if (entry.msg === 'spillway listening' && entry.url && entry.admin) {
            clearTimeout(timer);
            resolvePromise({ url: entry.url, admin: entry.admin });
          }
        } catch {
          /* not a JSON line */
        }
      });
    });
    const proxied = await get(`${listening.url}/some/path?x=1`);
    const health = await get(`${listening.admin}/healthz`);
    const pages: Array<{ status: number; body: string }> = [];
    for (const path of ['/console', '/console/app.js', '/console/uplot.js']) pages.push(await get(`${listening.admin}${path}`));
    child.kill('SIGTERM');
    const exit = await Promise.race([
      exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no exit within 10 s of SIGTERM:\n${output.join('\n')}`)), 10_000),
      ),
    ]);
    return { listening, proxied, health, console: pages, exit };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    backend.closeAllConnections();
    await new Promise<void>((r) => backend.close(() => r()));
  }
}
