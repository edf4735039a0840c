// Proves that what the Dockerfile's runtime stage runs works: package.json + package-lock.json,
// `npm ci --omit=dev --ignore-scripts`, the compiled dist/ and config/ — nothing else. If the
// gateway imports a devDependency at runtime, or dist/ needs a file that is not shipped, this fails.
//
// Needs dist/ (the `test` script builds before vitest) and network access to the npm registry.

import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const INSTALL_TIMEOUT_MS = 180_000;

let dir = '';
let backend: Server | undefined;
let gateway: ChildProcess | undefined;

/** Environment for child processes: no NODE_PATH/NODE_OPTIONS leaking the dev tree, no npm overrides. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
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

function run(command: string, args: string[], opts: { cwd: string; timeoutMs: number }): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output });
    });
  });
}

/** `npm` as the current npm run uses it (npm_execpath), else the one on PATH. */
function npm(args: string[], cwd: string, timeoutMs: number) {
  const execPath = process.env.npm_execpath;
  if (execPath && /npm-cli\.js$/.test(execPath)) return run(process.execPath, [execPath, ...args], { cwd, timeoutMs });
  return run(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd, timeoutMs });
}

function get(url: string): Promise<{ status: number; body: string }> {
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

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/cli/main.js is missing: run `npm run build` first (`npm test` does).');
  }
  dir = await mkdtemp(join(tmpdir(), 'spillway-prod-'));
  await cp(join(ROOT, 'package.json'), join(dir, 'package.json'));
  await cp(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
  await cp(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  await cp(join(ROOT, 'config'), join(dir, 'config'), { recursive: true });

  const install = await npm(['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], dir, INSTALL_TIMEOUT_MS);
  if (install.code !== 0) throw new Error(`npm ci --omit=dev failed (exit ${install.code}):\n${install.output}`);
}, INSTALL_TIMEOUT_MS + 20_000);

afterAll(async () => {
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) gateway.kill('SIGKILL');
  await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
  backend?.closeAllConnections();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('production install (what the Docker image runs)', () => {
  it('installs no devDependency and every dependency', async () => {
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    const lock = JSON.parse(await readFile(join(dir, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const modules = join(dir, 'node_modules');

    expect(existsSync(join(modules, 'vitest'))).toBe(false);
    expect(existsSync(join(modules, 'typescript'))).toBe(false);
    expect(existsSync(join(modules, '.bin', 'node'))).toBe(false);
    // Every package the lockfile marks dev-only must be absent (a devDependency that is also a
    // production dependency's dependency is not marked dev, and may legitimately be present).
    const devOnly = Object.entries(lock.packages)
      .filter(([path, info]) => path.startsWith('node_modules/') && info.dev === true)
      .map(([path]) => path);
    expect(devOnly.length).toBeGreaterThan(0);
    const present = devOnly.filter((path) => existsSync(join(dir, path)));
    expect(present).toEqual([]);
    for (const name of Object.keys(pkg.devDependencies ?? {})) {
      if (lock.packages[`node_modules/${name}`]?.dev === true) expect(existsSync(join(modules, name)), name).toBe(false);
    }
    for (const name of Object.keys(pkg.dependencies ?? {})) {
      expect(existsSync(join(modules, name, 'package.json')), name).toBe(true);
    }
  });

  it('validates the shipped demo config with `check`', async () => {
    const result = await run(process.execPath, [join(dir, 'dist', 'cli', 'main.js'), 'check', '--config', join(dir, 'config', 'demo.yaml')], {
      cwd: dir,
      timeoutMs: 20_000,
    });
    expect(result.output).not.toMatch(/Cannot find (module|package)/);
    expect(result.code).toBe(0);
  });

  it('starts, proxies, answers /healthz and exits 0 on SIGTERM', async () => {
    backend = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`hello from the backend: ${req.method} ${req.url}`);
      });
    });
    await new Promise<void>((r) => backend!.listen(0, '127.0.0.1', () => r()));
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
    gateway = child;
    const output: string[] = [];
    createInterface({ input: child.stderr }).on('line', (line) => output.push(line));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once('exit', (code, signal) => r({ code, signal })),
    );

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
    expect(listening.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(listening.admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(listening.url).not.toMatch(/:0$/);

    const proxied = await get(`${listening.url}/some/path?x=1`);
    expect(proxied).toEqual({ status: 200, body: 'hello from the backend: GET /some/path?x=1' });

    const health = await get(`${listening.admin}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });

    child.kill('SIGTERM');
    const result = await Promise.race([
      exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit within 10 s of SIGTERM:\n${output.join('\n')}`)), 10_000)),
    ]);
    expect(result).toEqual({ code: 0, signal: null });
  }, 40_000);
});
