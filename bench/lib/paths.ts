// Where things are: this checkout, the bench folder, results, and the checkout whose gateway is measured.

import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = dirname(BENCH_DIR);
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const BACKENDS_MODULE = join(ROOT, 'demo', 'backends.ts');
export const HOST = '127.0.0.1';

/** URL of a bench file, for `node --import`. */
export const benchUrl = (path: string): string => pathToFileURL(join(BENCH_DIR, path)).href;

/** The checkout whose dist/ is run as the gateway (run.ts --gateway-dir); this one by default. */
export const gatewayTarget: { dir: string; baselineDir: string | undefined } = { dir: ROOT, baselineDir: undefined };

/** A free port on 127.0.0.1, for children that cannot listen on port 0 and report it (redis-server, nginx). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
