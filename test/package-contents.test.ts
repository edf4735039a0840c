// What ships works with production dependencies only — the cheap check that runs in `npm test`
// (the full `npm ci --omit=dev` from the registry is test/system/production-install.test.ts):
//  - `npm pack` ships dist/ and config/ and none of the sources, tests or tooling;
//  - every package dist/ imports is a `dependencies` entry (a devDependency is absent in the image);
//  - every relative import of dist/ is a file that ships;
//  - the packed CLI checks the demo config and serves traffic from a directory holding only the
//    shipped files and the production dependency tree of the lockfile (devDependencies left out).
//
// Needs dist/ (the `test` script builds before vitest); no network.

import { builtinModules } from 'node:module';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/gateway.js';
import { npm, run, serveThroughPackagedGateway } from './helpers/production.js';

interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}
interface Lockfile {
  packages: Record<string, { dev?: boolean }>;
}

const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as Lockfile;
const builtins = new Set(builtinModules);

let packed: string[] = [];
let dir = '';

async function jsFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => join(e.parentPath, e.name));
}

/** Static imports, re-exports, side-effect imports, literal dynamic import() and require() calls. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm, // import … from 'x' (also over several lines), export … from 'x'
    /^\s*import\s*['"]([^'"]+)['"]/gm, // import 'x'
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g, // import('x')
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g, // require('x')
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) found.push(match[1]!);
  }
  return found;
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/cli/main.js is missing: run `npm run build` first (`npm test` does).');
  }
  const pack = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT, 60_000);
  if (pack.code !== 0) throw new Error(`npm pack --dry-run failed (exit ${pack.code}):\n${pack.output}`);
  packed = (JSON.parse(pack.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
}, 70_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the package (npm pack)', () => {
  it('ships the compiled CLI, the library entry, the configs and the README — no sources, tests or tooling', () => {
    expect(packed).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/cli/main.js',
        'dist/index.js',
        'config/schema.json',
        'config/demo.yaml',
        'console/index.html',
        'console/app.js',
        'console/app.css',
      ]),
    );
    const unexpected = packed.filter(
      (path) => !/^(dist|config|docs|console)\//.test(path) && !['package.json', 'README.md', 'LICENSE'].includes(path),
    );
    expect(unexpected).toEqual([]);
    expect(packed.filter((path) => /\.test\.|(^|\/)(test|bench|src|node_modules)\//.test(path))).toEqual([]);
  });

  it('dist/ imports only node built-ins and `dependencies` entries, and relative files that ship', async () => {
    const deps = new Set(Object.keys(pkg.dependencies ?? {}));
    const devOnly = new Set(Object.keys(pkg.devDependencies ?? {}).filter((name) => !deps.has(name)));
    const shipped = new Set(packed);
    const files = await jsFiles(join(ROOT, 'dist'));
    expect(files.length).toBeGreaterThan(10);
    const undeclared: string[] = [];
    const fromDev: string[] = [];
    const missing: string[] = [];
    const used = new Set<string>();
    for (const file of files) {
      const from = relative(ROOT, file).split('\\').join('/');
      for (const specifier of specifiers(await readFile(file, 'utf8'))) {
        if (specifier.startsWith('node:') || builtins.has(specifier)) continue;
        if (specifier.startsWith('.')) {
          const target = posix.normalize(posix.join(posix.dirname(from), specifier));
          if (!shipped.has(target)) missing.push(`${from} → ${specifier}`);
          continue;
        }
        const name = packageName(specifier);
        used.add(name);
        if (devOnly.has(name)) fromDev.push(`${from} → ${specifier}`);
        else if (!deps.has(name)) undeclared.push(`${from} → ${specifier}`);
      }
    }
    expect(fromDev, 'runtime imports of devDependencies').toEqual([]);
    expect(undeclared, 'runtime imports of packages not in dependencies').toEqual([]);
    expect(missing, 'relative imports of files that do not ship').toEqual([]);
    // the scan sees the gateway's real runtime imports (it would pass vacuously otherwise)
    expect([...used]).toEqual(expect.arrayContaining(['fastify', 'undici', 'zod', 'yaml']));
  });
});

describe('the packed CLI with production dependencies only', () => {
  beforeAll(async () => {
    // the shipped files, and node_modules holding only the lockfile's non-dev packages (linked
    // from the dev install: no registry, no copying); devDependencies such as vitest,
    // typescript or the `node` binary are absent, so importing one fails like in the image
    dir = await mkdtemp(join(tmpdir(), 'spillway-packed-'));
    for (const path of packed) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await cp(join(ROOT, path), join(dir, path));
    }
    const modules = await realpath(join(ROOT, 'node_modules'));
    for (const [path, info] of Object.entries(lock.packages)) {
      // top-level packages only: nested node_modules come along inside their parent
      if (!/^node_modules\/(@[^/]+\/)?[^/]+$/.test(path) || info.dev === true) continue;
      const source = join(modules, path.slice('node_modules/'.length));
      if (!existsSync(source)) continue; // an optional package for another platform
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await symlink(source, join(dir, path), 'dir');
    }
    expect(existsSync(join(dir, 'node_modules', 'vitest'))).toBe(false);
    expect(existsSync(join(dir, 'node_modules', 'typescript'))).toBe(false);
    for (const name of Object.keys(pkg.dependencies ?? {}))
      expect(existsSync(join(dir, 'node_modules', name, 'package.json')), name).toBe(true);
  }, 60_000);

  it('validates the shipped demo config with `check`', async () => {
    const result = await run(
      process.execPath,
      [join(dir, 'dist', 'cli', 'main.js'), 'check', '--config', join(dir, 'config', 'demo.yaml')],
      { cwd: dir, timeoutMs: 20_000 },
    );
    expect(result.output).not.toMatch(/Cannot find (module|package)/);
    expect(result.code).toBe(0);
  });

  it('starts, proxies, answers /healthz and exits 0 on SIGTERM', async () => {
    const seen = await serveThroughPackagedGateway(dir);
    expect(seen.listening.url).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    expect(seen.proxied).toEqual({ status: 200, body: 'hello from the backend: GET /some/path?x=1' });
    expect(seen.health.status).toBe(200);
    expect(JSON.parse(seen.health.body)).toMatchObject({ status: 'ok' });
    // the console's page and uPlot, from the shipped console/ and the production node_modules
    expect(seen.console.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(seen.console[2]!.body).toContain('uPlot');
    expect(seen.exit).toEqual({ code: 0, signal: null });
  }, 40_000);
});
