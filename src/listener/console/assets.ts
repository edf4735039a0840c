// The console's static files: the page from the package's console/ folder and uPlot from its
// npm package, read once and served from memory (no CDN: the console works offline).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Buffer;
  type: string;
}

/** The package root: this file is src/listener/console/ or dist/listener/console/. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const require = createRequire(import.meta.url);

const SOURCES: Record<string, { file: () => string; type: string }> = {
  'index.html': { file: () => `${ROOT}console/index.html`, type: 'text/html; charset=utf-8' },
  'app.js': { file: () => `${ROOT}console/app.js`, type: 'text/javascript; charset=utf-8' },
  'app.css': { file: () => `${ROOT}console/app.css`, type: 'text/css; charset=utf-8' },
  'uplot.js': { file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uplot.css': { file: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

const cache = new Map<string, Asset>();

/** The named asset, or undefined for a name that is not one of the console's files. */
export function consoleAsset(name: string): Asset | undefined {
  const cached = cache.get(name);
  if (cached) return cached;
  const source = Object.hasOwn(SOURCES, name) ? SOURCES[name] : undefined;
  if (!source) return undefined;
  const asset = { body: readFileSync(source.file()), type: source.type };
  cache.set(name, asset);
  return asset;
}

export const ASSET_NAMES = Object.keys(SOURCES);
