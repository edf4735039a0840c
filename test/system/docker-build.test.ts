// No Docker engine runs here, so this replays what the Dockerfile's build stage does with the
// files its COPY lines name: package.json, package-lock.json, tsconfig.json, tsconfig.build.json
// and src/ — nothing else of the tree (no test/, bench/, demo/) — and `npm run build`. The
// compiled dist/ must hold the CLI and no demo code; every path the Dockerfile copies must exist.

import { cp, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway.js';
import { npm } from '../helpers/production.js';

let dir = '';

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function files(root: string, at = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(root, at), { withFileTypes: true })) {
    const path = at ? `${at}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await files(root, path)));
    else out.push(path);
  }
  return out;
}

describe('the Dockerfile', () => {
  it('copies only paths that exist', async () => {
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((match) => match[1]!.trim().split(/\s+/));
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) expect(existsSync(join(ROOT, source)), `COPY ${source}`).toBe(true);
  });

  it("builds dist/ from the build stage's files alone, with the CLI and without demo code", async () => {
    dir = await mkdtemp(join(tmpdir(), 'spillway-docker-'));
    for (const name of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'])
      await cp(join(ROOT, name), join(dir, name));
    await cp(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const build = await npm(['run', 'build'], dir, 120_000);
    expect(build.code, build.output).toBe(0);
    const built = await files(join(dir, 'dist'));
    expect(built).toContain('cli/main.js');
    expect(built.filter((path) => /(^|\/)demo\//.test(path))).toEqual([]);
  }, 150_000);
});
