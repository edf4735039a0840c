// The full production install, from the registry: what the Dockerfile's runtime stage runs —
// package.json + package-lock.json, `npm ci --omit=dev --ignore-scripts`, the compiled dist/ and
// config/, nothing else. If the gateway imports a devDependency at runtime, or dist/ needs a file
// that is not shipped, this fails. (test/package-contents.test.ts checks the same in `npm test`
// without the registry; this one also proves the lockfile installs.)
//
// System suite (`npm run test:system`): needs dist/ (`npm run build`) and network access to the
// npm registry.

import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway.js';
import { npm, run, serveThroughPackagedGateway } from '../helpers/production.js';

const INSTALL_TIMEOUT_MS = 180_000;

let dir = '';

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
    const result = await run(
      process.execPath,
      [join(dir, 'dist', 'cli', 'main.js'), 'check', '--config', join(dir, 'config', 'demo.yaml')],
      {
        cwd: dir,
        timeoutMs: 20_000,
      },
    );
    expect(result.output).not.toMatch(/Cannot find (module|package)/);
    expect(result.code).toBe(0);
  });

  it('starts, proxies, answers /healthz and exits 0 on SIGTERM', async () => {
    const seen = await serveThroughPackagedGateway(dir);
    expect(seen.listening.url).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    expect(seen.listening.admin).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    expect(seen.proxied).toEqual({ status: 200, body: 'hello from the backend: GET /some/path?x=1' });
    expect(seen.health.status).toBe(200);
    expect(JSON.parse(seen.health.body)).toMatchObject({ status: 'ok' });
    expect(seen.exit).toEqual({ code: 0, signal: null });
  }, 40_000);
});
