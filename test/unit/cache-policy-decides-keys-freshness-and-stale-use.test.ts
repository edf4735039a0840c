// The cache policy as pure decisions: keys, storability and freshness (with a fake clock), stale
// allowances, Cache-Status text.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bodyKey } from '../../src/cache/body-key.js';
import { formatCacheStatus } from '../../src/cache/cache-status.js';
import { decideStore, evaluate, policyRequest, staleIfErrorAllowed } from '../../src/cache/freshness.js';
import { cacheKey, normaliseQuery, unkeyedInput, variantKey } from '../../src/cache/key.js';

const base = { route: 'r', method: 'GET', host: 'api.example', path: '/a', query: '', headers: {}, keyBy: [] as string[] };

describe('keys', () => {
  it('normalises the query: parameters by name, repeated names in order, empty parts dropped', () => {
    expect(normaliseQuery('?b=2&a=1&&a=0')).toBe('?a=1&a=0&b=2');
    expect(normaliseQuery('?')).toBe('');
    expect(normaliseQuery('')).toBe('');
  });

  it('differs by route, method, host, path, query and keyBy headers; HEAD shares GET', () => {
    const key = cacheKey(base)!.primary;
    expect(cacheKey({ ...base, method: 'HEAD' })!.primary).toBe(key);
    for (const other of [
      { route: 'other' },
      { method: 'POST' },
      { host: 'evil.example' },
      { path: '/b' },
      { query: '?x=1' },
      { keyBy: ['x-tenant'], headers: { 'x-tenant': 'a' } },
    ]) {
      expect(cacheKey({ ...base, ...other })!.primary).not.toBe(key);
    }
    // Unkeyed headers do not change it.
    expect(cacheKey({ ...base, headers: { 'x-forwarded-host': 'evil', cookie: 'a=1' } })!.primary).toBe(key);
    expect(cacheKey({ ...base, path: `/${'x'.repeat(3000)}` })).toBeUndefined();
    expect(cacheKey(base)!.primary.startsWith('/a\u0000')).toBe(true);
  });

  it('variants differ by the Vary headers only', () => {
    const a = variantKey('k', ['accept-language'], { 'accept-language': 'en', cookie: 'x' });
    expect(variantKey('k', ['accept-language'], { 'accept-language': 'en' })).toBe(a);
    expect(variantKey('k', ['accept-language'], { 'accept-language': 'fr' })).not.toBe(a);
  });

  it('names an unkeyed forwarding header unless keyBy holds it', () => {
    expect(unkeyedInput({ 'x-original-url': '/admin' }, [])).toBe('x-original-url');
    expect(unkeyedInput({ 'x-forwarded-host': 'h' }, ['x-forwarded-host'])).toBeUndefined();
    expect(unkeyedInput({ accept: '*/*' }, [])).toBeUndefined();
  });

  it('hashes the normalised JSON body of deterministic requests only', () => {
    const a = bodyKey(Buffer.from('{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}'), {}, undefined);
    const b = bodyKey(Buffer.from('{ "messages": [{"content":"hi","role":"user"}], "temperature": 0, "model": "m" }'), {}, undefined);
    expect(a).toEqual(b);
    expect('hash' in a).toBe(true);
    expect(bodyKey(Buffer.from('{"temperature":1}'), {}, undefined)).toEqual({ skip: 'not-deterministic' });
    expect('hash' in bodyKey(Buffer.from('{"temperature":1}'), { 'x-det': '1' }, 'x-det')).toBe(true);
    expect(bodyKey(Buffer.from('{"temperature":1}'), { 'x-det': 'false' }, 'x-det')).toEqual({ skip: 'not-deterministic' });
    expect(bodyKey(Buffer.from('[1,2]'), {}, undefined)).toEqual({ skip: 'not-json' });
    expect(bodyKey(Buffer.from('nope'), {}, undefined)).toEqual({ skip: 'not-json' });
  });
});

describe('freshness (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const options = { defaultTtlMs: undefined, staleIfErrorMs: 0 };
  const request = policyRequest('GET', '/a', { host: 'h' }, []);

  it('fresh for max-age, then must revalidate', () => {
    const decision = decideStore('GET', '/a', { host: 'h' }, 200, { 'cache-control': 'max-age=10', etag: '"1"' }, options);
    if (!decision.store) throw new Error('expected to store');
    expect(evaluate(decision.policy, request).kind).toBe('fresh');
    vi.advanceTimersByTime(10_001);
    const lookup = evaluate(decision.policy, request);
    expect(lookup.kind).toBe('revalidate');
    expect(lookup.kind === 'revalidate' && lookup.revalidate['if-none-match']).toBe('"1"');
  });

  it('no heuristic freshness; defaultTtl gives it', () => {
    const lastModified = new Date(Date.now() - 86_400_000).toUTCString();
    expect(decideStore('GET', '/a', {}, 200, { 'last-modified': lastModified }, options)).toMatchObject({ store: true });
    const noTtl = decideStore('GET', '/a', { host: 'h' }, 200, { 'last-modified': lastModified }, options);
    if (!noTtl.store) throw new Error('stored for revalidation');
    expect(evaluate(noTtl.policy, request).kind).toBe('revalidate');
    expect(decideStore('GET', '/a', {}, 200, {}, options)).toEqual({ store: false, reason: 'no-freshness' });
    const ttl = decideStore('GET', '/a', { host: 'h' }, 200, {}, { defaultTtlMs: 60_000, staleIfErrorMs: 0 });
    if (!ttl.store) throw new Error('expected to store');
    expect(evaluate(ttl.policy, request).kind).toBe('fresh');
    expect(ttl.retainMs).toBe(60_000);
  });

  it('refuses private, no-store, Authorization without public, Set-Cookie without public', () => {
    expect(decideStore('GET', '/a', {}, 200, { 'cache-control': 'private, max-age=9' }, options)).toEqual({
      store: false,
      reason: 'private',
    });
    expect(decideStore('GET', '/a', {}, 200, { 'cache-control': 'no-store' }, options)).toEqual({ store: false, reason: 'no-store' });
    expect(decideStore('GET', '/a', { authorization: 'x' }, 200, { 'cache-control': 'max-age=9' }, options)).toEqual({
      store: false,
      reason: 'authorization',
    });
    expect(decideStore('GET', '/a', {}, 200, { 'cache-control': 'max-age=9', 'set-cookie': 'a=1' }, options)).toEqual({
      store: false,
      reason: 'set-cookie',
    });
    const cookie = decideStore('GET', '/a', {}, 200, { 'cache-control': 'public, max-age=9', 'set-cookie': 'a=1' }, options);
    if (!cookie.store) throw new Error('expected to store');
    expect(cookie.policy.responseHeaders()['set-cookie']).toBeUndefined();
  });

  it('stale-if-error: within the window, never with must-revalidate', () => {
    const routeWindow = { defaultTtlMs: undefined, staleIfErrorMs: 60_000 };
    const decision = decideStore('GET', '/a', {}, 200, { 'cache-control': 'max-age=10' }, routeWindow);
    if (!decision.store) throw new Error('expected to store');
    expect(decision.retainMs).toBe(70_000);
    vi.advanceTimersByTime(69_000);
    expect(staleIfErrorAllowed(decision.policy, 60_000)).toBe(true);
    vi.advanceTimersByTime(2_000);
    expect(staleIfErrorAllowed(decision.policy, 60_000)).toBe(false);
    const strict = decideStore('GET', '/a', {}, 200, { 'cache-control': 'max-age=10, must-revalidate' }, routeWindow);
    if (!strict.store) throw new Error('expected to store');
    vi.advanceTimersByTime(11_000);
    expect(staleIfErrorAllowed(strict.policy, 60_000)).toBe(false);
  });
});

describe('Cache-Status', () => {
  it('formats RFC 9211 parameters, quoting details that are not tokens', () => {
    expect(formatCacheStatus({ hit: true, ttl: 12.7 })).toBe('spillway; hit; ttl=12');
    expect(formatCacheStatus({ fwd: 'stale', fwdStatus: 429, ttl: -3.2, detail: 'stale-if-error: all-backends-throttled' })).toBe(
      'spillway; fwd=stale; fwd-status=429; ttl=-4; detail="stale-if-error: all-backends-throttled"',
    );
  });
});
