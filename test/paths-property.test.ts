// Property: whatever the spelling of a request target (percent-encoding, dot segments, ";"
// parameters, "#", case, doubled slashes, absolute form), the rule the gateway matches is the
// rule its forwarded path matches at a backend that decodes the path the common ways — or the
// gateway refuses the target (400). Checked on the pure target → route step for many cases, and
// through a real gateway and backend on raw sockets for fewer.

import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { matchSchema } from '../src/config/schema/match.js';
import { compileMatch } from '../src/routing/matchers.js';
import type { PathOptions } from '../src/routing/normalise.js';
import { matchRoute } from '../src/routing/route-table.js';
import { isTargetRefusal, readTarget } from '../src/routing/target.js';
import { closeAll, startBackend, type TestBackend } from './helpers/backend.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';

/** The rules, first match wins: deny rules before the prefixes they sit under. */
const RULES = [
  { name: 'deny-admin', path: '/admin' },
  { name: 'deny-api-admin', path: '/api/admin' },
  { name: 'deny-secret', path: '/t/:id/secret' },
  { name: 'api', path: '/api' },
  { name: 'all', path: '/' },
] as const;

// ---- backends, modelled: how common servers turn a received path into the path they route ----

type Model = (forwarded: string) => string | undefined;

function decodeAll(segments: string[]): string[] | undefined {
  try {
    return segments.map((segment) => decodeURIComponent(segment));
  } catch {
    return undefined; // the backend answers 400
  }
}

function resolveDots(segments: string[]): string[] | undefined {
  const out: string[] = [];
  for (const segment of segments) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(segment);
  }
  return out;
}

const pathOf = (forwarded: string) => forwarded.split('?')[0]!;
const join = (segments: string[] | undefined) => (segments ? `/${segments.join('/')}` : undefined);

/** WHATWG URL (fastify, undici, anything on `new URL`): dot segments resolved, then decoded. */
const whatwg: Model = (forwarded) => {
  const decoded = decodeAll(new URL(forwarded, 'http://backend').pathname.split('/').slice(1));
  return join(decoded?.filter((segment) => segment !== ''));
};
/** Decode, then normalise (Express-style routers and many file servers). */
const decodeThenResolve: Model = (forwarded) => {
  const decoded = decodeAll(pathOf(forwarded).split('/').slice(1));
  return join(decoded && resolveDots(decoded));
};
/** Tomcat, Jetty, Spring: ";…" path parameters removed from every segment, then decoded, then normalised. */
const stripParams: Model = (forwarded) => {
  const decoded = decodeAll(
    pathOf(forwarded)
      .split('/')
      .slice(1)
      .map((segment) => segment.split(';')[0]!),
  );
  return join(decoded && resolveDots(decoded));
};
/** IIS / Windows file names: trailing dots and spaces of a segment are dropped. */
const trimTrailing: Model = (forwarded) => {
  const decoded = decodeAll(pathOf(forwarded).split('/').slice(1));
  return join(
    decoded && resolveDots(decoded.map((segment) => (segment === '.' || segment === '..' ? segment : segment.replace(/[.\s]+$/, '')))),
  );
};

/** The backends a mode is made for (a path without ";" reads the same at all of them). */
function modelsFor(options: PathOptions, forwarded: string): Model[] {
  const semicolon = pathOf(forwarded).includes(';');
  const models: Model[] = [];
  if (!semicolon || options.semicolons !== 'keep') models.push(stripParams);
  if (!semicolon || options.semicolons !== 'match-stripped') {
    models.push(whatwg, decodeThenResolve);
    if (options.trailingDotSpace === 'refuse') models.push(trimTrailing);
  }
  return models;
}

/** The rule a backend's routing (the same rules, on its decoded path) picks. */
function backendRule(decodedPath: string, caseInsensitive: boolean): string {
  const path = caseInsensitive ? decodedPath.toLowerCase() : decodedPath;
  const segments = path.split('/').slice(1).filter(Boolean);
  for (const rule of RULES) {
    const want = rule.path.split('/').slice(1).filter(Boolean);
    if (want.length > segments.length) continue;
    if (want.every((part, i) => part.startsWith(':') || part === segments[i])) return rule.name;
  }
  return 'none';
}

// ---- the gateway's side, pure ----

function compiledRules(caseInsensitive: boolean) {
  return RULES.map((rule) => ({ name: rule.name, match: compileMatch(matchSchema.parse({ path: rule.path }), caseInsensitive) }));
}

// ---- generated targets ----

const WORDS = ['api', 'admin', 'Admin', 'ADMIN', 'API', 't', '7', 'secret', 'orders', 'a.b', '.', '..', ''];
const SUFFIXES = ['', '', '', ';', ';x', ';v=1', ';/', '.', '%20', '%09', '%2e', '%2E', '.;x', '%3B'];
const ODD = ['%2e', '%2E%2e', '.%2e', '%2F', 'a%2fb', '%5C', '\\', '%00', '%zz', '..;', '%C3%A9'];

function spell(word: string, encodeAt: number[], upperHex: boolean): string {
  const chars = [...word];
  for (const at of encodeAt) {
    if (chars.length === 0) break;
    const i = at % chars.length;
    if (chars[i]!.startsWith('%')) continue;
    const hex = chars[i]!.charCodeAt(0).toString(16).padStart(2, '0');
    chars[i] = `%${upperHex ? hex.toUpperCase() : hex}`;
  }
  return chars.join('');
}

const segment = fc
  .oneof(
    {
      weight: 6,
      arbitrary: fc.tuple(fc.constantFrom(...WORDS), fc.array(fc.nat(9), { maxLength: 3 }), fc.boolean(), fc.constantFrom(...SUFFIXES)),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ODD), fc.constant([] as number[]), fc.boolean(), fc.constant('')) },
  )
  .map(([word, encodeAt, upperHex, suffix]) => spell(word, encodeAt, upperHex) + suffix);

const target = fc
  .tuple(
    fc.constantFrom('', '', '', 'http://h', 'HTTP://h:80', 'https://h'),
    fc.array(fc.tuple(fc.constantFrom('/', '/', '/', '//'), segment), { minLength: 1, maxLength: 5 }),
    fc.boolean(),
    fc.constantFrom('', '', '?q=1', '?next=/admin', '?a=%2e%2e'),
    fc.constantFrom('', '', '', '#x', '#/../admin'),
  )
  .map(([absolute, parts, trailing, query, fragment]) => {
    const path = parts.map(([sep, seg]) => sep + seg).join('') + (trailing ? '/' : '');
    return absolute + path + query + fragment;
  });

const options = fc.record({
  semicolons: fc.constantFrom('match-stripped' as const, 'refuse' as const, 'keep' as const),
  caseInsensitive: fc.boolean(),
  trailingDotSpace: fc.constantFrom('refuse' as const, 'keep' as const),
});

// ---- the properties ----

describe('property: the rule matched is the rule the backend serves', () => {
  it('pure target → route: 20,000 generated targets under every paths mode', () => {
    const tables = new Map([false, true].map((ci) => [ci, compiledRules(ci)]));
    const seen = { accepted: 0, refused: 0, denied: 0, deniedSpelledOddly: 0 };
    fc.assert(
      fc.property(options, target, (mode, raw) => {
        const read = readTarget(raw, mode);
        if (isTargetRefusal(read)) {
          seen.refused++;
          return;
        }
        seen.accepted++;
        const route = matchRoute(tables.get(mode.caseInsensitive)!, { path: read.match } as never);
        const rule = route?.route.name ?? 'none';
        if (rule.startsWith('deny')) {
          seen.denied++;
          if (!RULES.some((r) => raw === r.path)) seen.deniedSpelledOddly++;
        }
        const forwarded = read.forward + read.query;
        for (const model of modelsFor(mode, forwarded)) {
          const decoded = model(forwarded);
          if (decoded === undefined) continue; // that backend refuses the path itself
          expect(backendRule(decoded, mode.caseInsensitive), `${raw} → ${forwarded} (${model.name}, ${JSON.stringify(mode)})`).toBe(rule);
        }
      }),
      { numRuns: 20_000 },
    );
    // not vacuous: many targets pass, and deny rules are reached through odd spellings
    expect(seen.accepted).toBeGreaterThan(2_000);
    expect(seen.refused).toBeGreaterThan(2_000);
    expect(seen.deniedSpelledOddly).toBeGreaterThan(200);
  });

  describe('through a real gateway on raw sockets', () => {
    const gateways = new Map<string, Promise<TestGateway>>();
    let backend: TestBackend | undefined;
    afterAll(async () => closeAll(backend, ...(await Promise.all(gateways.values()))));

    const routesYaml = RULES.map(
      (rule) =>
        `  - match: { path: "${rule.path}" }\n    upstream: app\n    rewrite: { requestHeaders: { set: { x-rule: ${rule.name} } } }`,
    ).join('\n');

    async function gatewayFor(mode: PathOptions): Promise<TestGateway> {
      backend ??= await startBackend((_req, res) => {
        res.end('ok');
      });
      const key = JSON.stringify(mode);
      if (!gateways.has(key)) {
        const yaml = `paths: ${key}\nupstreams: { app: { backends: [ { url: ${backend.url} } ] } }\nroutes:\n${routesYaml}\n`;
        gateways.set(key, startGateway(yaml));
      }
      return gateways.get(key)!;
    }

    let serial = 0;
    function send(url: string, raw: string, id: string): Promise<number> {
      return new Promise((resolve, reject) => {
        const socket = connect(Number(new URL(url).port), '127.0.0.1', () =>
          socket.write(`GET ${raw} HTTP/1.1\r\nHost: h\r\nx-probe: ${id}\r\nConnection: close\r\n\r\n`),
        );
        let data = '';
        socket.on('data', (chunk) => (data += chunk.toString('latin1')));
        socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
        socket.on('error', reject);
      });
    }

    it('400 or the same rule at the backend, for 400 generated targets', async () => {
      let forwardedCount = 0;
      await fc.assert(
        fc.asyncProperty(options, target, async (mode, raw) => {
          const gw = await gatewayFor(mode);
          const id = String(++serial);
          const status = await send(gw.url, raw, id);
          const received = backend!.received.find((r) => r.headers['x-probe'] === id);
          if (status === 400) {
            expect(received).toBeUndefined();
            return;
          }
          expect(status).toBe(200);
          forwardedCount++;
          const rule = String(received!.headers['x-rule']);
          for (const model of modelsFor(mode, received!.url)) {
            const decoded = model(received!.url);
            if (decoded === undefined) continue;
            expect(backendRule(decoded, mode.caseInsensitive), `${raw} → ${received!.url} (${model.name})`).toBe(rule);
          }
        }),
        { numRuns: 400 },
      );
      expect(forwardedCount).toBeGreaterThan(40);
    }, 60_000);
  });
});
