import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { parseConfigText } from '../src/config/load.js';
import { matchSchema } from '../src/config/schema/match.js';
import { compileMatch } from '../src/routing/matchers.js';
import { normalisePath } from '../src/routing/normalise.js';
import { RequestView } from '../src/routing/request-view.js';
import { compilePathRewrite } from '../src/routing/rewrite.js';
import { matchRoute } from '../src/routing/route-table.js';

function view(method: string, target: string, headers: Record<string, string> = {}): RequestView {
  const q = target.indexOf('?');
  return new RequestView(method, q === -1 ? target : target.slice(0, q), q === -1 ? '' : target.slice(q), headers, '127.0.0.1');
}

function matcher(match: Record<string, unknown>) {
  return compileMatch(matchSchema.parse(match));
}

describe('path matching', () => {
  it.each([
    [{ path: '/api/orders' }, '/api/orders', true],
    [{ path: '/api/orders' }, '/api/orders/7', true],
    [{ path: '/api/orders' }, '/api/ordersX', false],
    [{ path: '/api/orders' }, '/api', false],
    [{ path: '/v1/' }, '/v1/chat', true],
    [{ path: '/v1/' }, '/v1', false],
    [{}, '/anything/at/all', true],
    [{ exact: '/api/orders' }, '/api/orders', true],
    [{ exact: '/api/orders' }, '/api/orders/7', false],
    [{ exact: '/api/orders' }, '/api/orders/', false],
    [{ path: '/api/users/:id' }, '/api/users/42', true],
    [{ path: '/api/users/:id' }, '/api/users/42/orders', true],
    [{ path: '/api/users/:id' }, '/api/users', false],
    [{ path: '/api/users/:id' }, '/api/users/', false],
    [{ exact: '/api/users/:id' }, '/api/users/42/orders', false],
    [{ exact: '/api/users/:id/orders/:order' }, '/api/users/42/orders/9', true],
  ])('%j against %s → %s', (match, path, expected) => {
    expect(matcher(match).test(view('GET', path)) !== undefined).toBe(expected);
  });

  it('templates expose their params', () => {
    expect(matcher({ path: '/api/users/:userId/orders/:orderId' }).test(view('GET', '/api/users/42/orders/9/items'))).toEqual({
      userId: '42',
      orderId: '9',
    });
    expect(matcher({ path: '/api/orders' }).test(view('GET', '/api/orders'))).toEqual({});
  });
});

describe('method, host, header, query and cookie matching', () => {
  it.each([
    [{ methods: ['GET', 'post'] }, view('POST', '/'), true],
    [{ methods: ['GET'] }, view('DELETE', '/'), false],
    [{ host: 'api.example.com' }, view('GET', '/', { host: 'API.example.com:8080' }), true],
    [{ host: 'api.example.com' }, view('GET', '/', { host: 'www.example.com' }), false],
    [{ host: '*.example.com' }, view('GET', '/', { host: 'eu.shop.example.com' }), true],
    [{ host: '*.example.com' }, view('GET', '/', { host: 'example.com' }), false],
    [{ host: ['a.test', 'b.test'] }, view('GET', '/', { host: 'b.test' }), true],
    [{ headers: { 'X-Beta': 'yes' } }, view('GET', '/', { 'x-beta': 'yes' }), true],
    [{ headers: { 'x-beta': 'yes' } }, view('GET', '/', { 'x-beta': 'no' }), false],
    [{ headers: { 'x-beta': { equals: 'yes' } } }, view('GET', '/', { 'x-beta': 'yes' }), true],
    [{ headers: { 'user-agent': { regex: '^curl/' } } }, view('GET', '/', { 'user-agent': 'curl/8.1' }), true],
    [{ headers: { 'user-agent': { regex: '^curl/' } } }, view('GET', '/', { 'user-agent': 'Mozilla' }), false],
    [{ headers: { authorization: { present: true } } }, view('GET', '/', { authorization: 'Bearer x' }), true],
    [{ headers: { authorization: { present: true } } }, view('GET', '/'), false],
    [{ headers: { authorization: { absent: true } } }, view('GET', '/'), true],
    [{ headers: { authorization: { present: false } } }, view('GET', '/', { authorization: 'x' }), false],
    [{ query: { version: '2' } }, view('GET', '/?a=1&version=2'), true],
    [{ query: { version: '2' } }, view('GET', '/?version=1'), false],
    [{ query: { debug: { present: true } } }, view('GET', '/?debug'), true],
    [{ query: { debug: { absent: true } } }, view('GET', '/?x=1'), true],
    [{ cookies: { canary: 'on' } }, view('GET', '/', { cookie: 'session=abc; canary=on' }), true],
    [{ cookies: { canary: 'on' } }, view('GET', '/', { cookie: 'canary=off' }), false],
    [{ cookies: { session: { regex: '^[a-f0-9]+$' } } }, view('GET', '/', { cookie: 'session="abc123"' }), true],
    [{ cookies: { session: { present: true } } }, view('GET', '/'), false],
  ])('%j → %s', (match, request, expected) => {
    expect(matcher(match).test(request) !== undefined).toBe(expected);
  });

  it('every condition must hold', () => {
    const m = matcher({ path: '/api', methods: ['GET'], headers: { 'x-beta': 'yes' }, query: { v: '2' } });
    expect(m.test(view('GET', '/api/x?v=2', { 'x-beta': 'yes' }))).toBeDefined();
    expect(m.test(view('GET', '/api/x?v=2'))).toBeUndefined();
    expect(m.test(view('POST', '/api/x?v=2', { 'x-beta': 'yes' }))).toBeUndefined();
  });
});

describe('rule order', () => {
  it('the first matching rule wins', () => {
    const routes = [
      { name: 'beta', match: matcher({ path: '/api', headers: { 'x-beta': 'yes' } }) },
      { name: 'orders', match: matcher({ path: '/api/orders' }) },
      { name: 'api', match: matcher({ path: '/api' }) },
      { name: 'rest', match: matcher({}) },
    ];
    expect(matchRoute(routes, view('GET', '/api/orders/1', { 'x-beta': 'yes' }))?.route.name).toBe('beta');
    expect(matchRoute(routes, view('GET', '/api/orders/1'))?.route.name).toBe('orders');
    expect(matchRoute(routes, view('GET', '/api/users'))?.route.name).toBe('api');
    expect(matchRoute(routes, view('GET', '/home'))?.route.name).toBe('rest');
  });
});

describe('shadow warnings', () => {
  const upstreams = 'upstreams:\n  a: { backends: [ { url: http://127.0.0.1:9 } ] }\n';
  const warningsOf = (routes: string) => parseConfigText(`${upstreams}routes:\n${routes}`, 'gateway.yaml', {}).warnings;

  it('warns when an earlier rule matches everything a later one would', () => {
    const warnings = warningsOf(`  - name: api
    match: { path: /api }
    upstream: a
  - name: orders
    match: { path: /api/orders, methods: [GET] }
    upstream: a
  - name: users
    match: { path: /api/users/:id }
    upstream: a
`);
    expect(warnings.map((w) => [w.line, w.path])).toEqual([
      [7, 'routes[1]'],
      [10, 'routes[2]'],
    ]);
    expect(warnings[0]!.message).toContain('route "orders" can never match: "api" (routes[0]) comes first');
  });

  it.each([
    ['a narrower rule first', '{ path: /api/orders }', '{ path: /api }'],
    ['methods narrower first', '{ path: /, methods: [GET] }', '{ path: /api }'],
    ['header condition first', '{ path: /, headers: { x-beta: yes } }', '{ path: /api }'],
    ['different host', '{ host: a.test }', '{ host: b.test }'],
    ['exact before prefix', '{ exact: /api }', '{ path: /api }'],
    ['literal before template', '{ path: /users/me }', '{ path: /users/:id }'],
  ])('no warning: %s', (_name, first, second) => {
    expect(warningsOf(`  - match: ${first}\n    upstream: a\n  - match: ${second}\n    upstream: a\n`)).toEqual([]);
  });

  it.each([
    ['template covers literal', '{ path: /users/:id }', '{ path: /users/me/orders }'],
    ['wildcard host covers host', '{ host: "*.example.com" }', '{ host: api.example.com, path: /x }'],
    ['same conditions', '{ headers: { x-beta: yes } }', '{ path: /api, headers: { X-Beta: yes }, query: { a: "1" } }'],
    ['exact duplicates', '{ exact: /a/:x }', '{ exact: /a/:y }'],
  ])('warning: %s', (_name, first, second) => {
    expect(warningsOf(`  - match: ${first}\n    upstream: a\n  - match: ${second}\n    upstream: a\n`)).toHaveLength(1);
  });
});

describe('route config', () => {
  const base =
    'upstreams:\n  a: { backends: [ { url: http://127.0.0.1:9 } ] }\n  b: { backends: [ { url: http://127.0.0.1:10 } ] }\nroutes:\n';
  const issues = (routes: string) => {
    try {
      parseConfigText(base + routes, 'gateway.yaml', {});
    } catch (error) {
      if (error instanceof ConfigError) return error.issues.map((i) => `${i.line} ${i.path}: ${i.message}`);
      throw error;
    }
    return [];
  };

  it('a route has exactly one action', () => {
    expect(issues('  - match: { path: / }\n')[0]).toContain('a route needs one action: upstream, split, respond');
    expect(issues('  - upstream: a\n    respond: { status: 410 }\n')[0]).toContain(
      'a route has exactly one action, found upstream and respond',
    );
  });

  it('names unknown upstreams in split and mirror, and bad parameters', () => {
    expect(issues('  - split: [ { upstream: a, weight: 1 }, { upstream: c, weight: 1 } ]\n')).toEqual([
      '5 routes[0].split[1].upstream: unknown upstream "c" (defined: a, b)',
    ]);
    expect(issues('  - upstream: a\n    mirror: { upstream: ghost }\n')[0]).toContain(
      'routes[0].mirror.upstream: unknown upstream "ghost"',
    );
    expect(issues('  - match: { path: /u/:id }\n    upstream: a\n    rewrite: { path: /v2/:user }\n')[0]).toContain(
      ':user is not a parameter of the match path',
    );
    expect(issues('  - match: { path: /a/../b }\n    upstream: a\n')[0]).toContain('write the path normalised');
    expect(issues('  - match: { headers: { x: { regex: "(" } } }\n    upstream: a\n')[0]).toContain('not a valid regular expression');
    expect(issues('  - upstream: a\n    stickyBy: header:x\n')[0]).toContain('stickyBy only applies to split');
    expect(issues('  - split: [ { upstream: a, weight: 1 } ]\n    stickyBy: session\n')[0]).toContain(
      'use "header:<name>", "cookie:<name>" or "ip"',
    );
    expect(issues('  - { name: x, upstream: a }\n  - { name: x, upstream: b }\n')[0]).toContain(
      'route name "x" is already used by routes[0]',
    );
  });
});

describe('path normalisation', () => {
  it.each([
    ['/api/orders', '/api/orders'],
    ['//api', '/api'],
    ['/api//orders///7', '/api/orders/7'],
    ['/api/orders/../admin', '/api/admin'],
    ['/api/orders/../../admin', '/admin'],
    ['/api/./orders', '/api/orders'],
    ['/api/orders/..', '/api/'],
    ['/api/orders/', '/api/orders/'],
    ['/%61pi/%7Eme', '/api/~me'],
    ['/a%20b/%c3%a9', '/a%20b/%C3%A9'],
    ['/a/b%3Fc', '/a/b%3Fc'],
    ['/', '/'],
  ])('%s → %s', (raw, normalised) => {
    expect(normalisePath(raw)).toBe(normalised);
  });

  it.each([
    ['/api/orders%2F..%2Fadmin', 'encoded slash (%2F)'],
    ['/api%2forders', 'encoded slash (%2F)'],
    ['/api/%2e%2e/admin', 'encoded dot-segment'],
    ['/api/.%2E/admin', 'encoded dot-segment'],
    ['/api/%2e/x', 'encoded dot-segment'],
    ['/..', '".." climbs above the root'],
    ['/api/../../etc', '".." climbs above the root'],
    ['/api\\..\\admin', 'backslash in path'],
    ['/api%5Cadmin', 'encoded backslash (%5C)'],
    ['/api/%zz', 'broken percent-encoding'],
    ['/api/%4', 'broken percent-encoding'],
    ['/a%00b', 'encoded NUL (%00)'],
  ])('%s is refused (%s)', (raw, reason) => {
    expect(normalisePath(raw)).toEqual({ rejected: reason });
  });

  it('returns the same string when nothing changes (no work on the fast path)', () => {
    const path = '/v1/chat/completions';
    expect(normalisePath(path)).toBe(path);
  });
});

describe('path rewrites', () => {
  const rewrite = (match: Record<string, unknown>, spec: Record<string, unknown>, path: string) => {
    const m = matcher(match);
    const params = m.test(view('GET', path))!;
    return compilePathRewrite(spec as never, m.path)!(path, params);
  };
  it.each([
    [{ path: '/api' }, { stripPrefix: '/api' }, '/api/orders/7', '/orders/7'],
    [{ path: '/api' }, { stripPrefix: '/api' }, '/api', '/'],
    [{ path: '/api' }, { stripPrefix: '/api', addPrefix: '/v2' }, '/api/orders', '/v2/orders'],
    [{ path: '/api' }, { replacePrefix: { from: '/api', to: '/internal/v2' } }, '/api/orders', '/internal/v2/orders'],
    [{ path: '/api/users/:id' }, { path: '/v2/people/:id' }, '/api/users/42', '/v2/people/42'],
    [{ path: '/api/users/:id' }, { path: '/v2/people/:id' }, '/api/users/42/orders?x', '/v2/people/42/orders?x'],
    [{ path: '/api/users/:id/orders/:o' }, { path: '/orders/:o/owner/:id' }, '/api/users/4/orders/9', '/orders/9/owner/4'],
    [{ exact: '/old/:id' }, { path: '/new/:id/' }, '/old/5', '/new/5/'],
    [{ path: '/legacy' }, { path: '/' }, '/legacy/a/b', '/a/b'],
  ])('%j %j: %s → %s', (match, spec, path, expected) => {
    expect(rewrite(match, spec, path)).toBe(expected);
  });
});
