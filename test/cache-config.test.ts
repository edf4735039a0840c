// The route `cache` section: defaults, bounds and clear errors; the example config passes check.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { expectCheckPasses } from './helpers/config.js';
import { ROOT } from './helpers/gateway.js';

function parse(route: string, extra = '') {
  return parseConfigText(
    `${extra}
upstreams:
  api: { backends: [ { url: http://127.0.0.1:9 } ] }
routes:
  - ${route}
`,
    'test.yaml',
    {},
  );
}

function errorOf(route: string, extra = ''): string {
  try {
    parse(route, extra);
  } catch (error) {
    return String((error as Error).message);
  }
  throw new Error('expected the config to be rejected');
}

describe('cache config', () => {
  it('is off unless written; written, it has the documented defaults', () => {
    expect(parse('{ upstream: api }').config.routes[0]!.cache).toBeUndefined();
    expect(parse('{ upstream: api, cache: {} }').config.routes[0]!.cache).toEqual({
      store: 'memory',
      maxBody: 1024 * 1024,
      maxSize: 256 * 1024 * 1024,
      lockTimeout: 5000,
    });
    const llm = parse('{ upstream: api, cache: { keyBy: body, defaultTtl: 1h, staleIfError: 5m, deterministicHeader: X-Det } }').config
      .routes[0]!.cache!;
    expect(llm.keyBy).toEqual(['body']);
    expect(llm.defaultTtl).toBe(3_600_000);
    expect(llm.staleIfError).toBe(300_000);
    expect(llm.deterministicHeader).toBe('x-det');
  });

  it('rejects what cannot work, naming the field', () => {
    expect(errorOf('{ upstream: api, cache: { store: redis } }')).toContain('cache store: redis needs a root `redis` section');
    expect(errorOf('{ respond: { status: 200 }, cache: {} }')).toContain('cache applies to upstream and split actions');
    expect(errorOf('{ upstream: api, cache: { deterministicHeader: x-det } }')).toContain('deterministicHeader applies to keyBy: body');
    expect(errorOf('{ upstream: api, cache: { maxBody: 1tb } }')).toContain('maxBody');
    expect(errorOf('{ upstream: api, cache: { maxBody: 100mb } }')).toContain('maxBody');
    expect(errorOf('{ upstream: api, cache: { defaultTtl: forever } }')).toContain('defaultTtl');
    expect(errorOf('{ upstream: api, cache: { keyBy: ["bad header"] } }')).toContain('keyBy');
    expect(errorOf('{ upstream: api, cache: { ttl: 5m } }')).toContain('ttl');
  });

  it('config/caching.yaml passes `spillway check`', async () => {
    await expectCheckPasses(join(ROOT, 'config/caching.yaml'));
  });
});
