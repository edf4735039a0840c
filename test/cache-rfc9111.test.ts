// The route cache as a shared cache (RFC 9111): what is stored, for how long, Vary, revalidation
// with ETag (304), Age, and the shared-cache rules for Authorization and Set-Cookie.

import { afterEach, describe, expect, it } from 'vitest';
import { closeAll } from './helpers/backend.js';
import { cacheSetup, type CacheSetup } from './helpers/cache.js';
import { sleep } from './helpers/wait.js';
import { httpRequest } from './helpers/http.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await closeAll(...open.splice(0));
});

async function setup(...args: Parameters<typeof cacheSetup>): Promise<CacheSetup> {
  const setup = await cacheSetup(...args);
  open.push(setup.gw, setup.backend);
  return setup;
}

/** A backend answering `n` (its call count) with the given headers. */
function counting(headers: Record<string, string>) {
  let n = 0;
  return (_req: unknown, res: import('node:http').ServerResponse) => {
    n++;
    res.writeHead(200, { 'content-type': 'text/plain', ...headers });
    res.end(`answer ${n}`);
  };
}

describe('freshness', () => {
  it('max-age: a second GET is a hit with Age, the backend is called once', async () => {
    const s = await setup(counting({ 'cache-control': 'max-age=60' }));
    const first = await s.get('/a');
    expect(first.cacheStatus).toBe('spillway; fwd=uri-miss; fwd-status=200; stored');
    await sleep(1100);
    const second = await s.get('/a');
    expect(second.body).toBe('answer 1');
    expect(second.cacheStatus).toMatch(/^spillway; hit; ttl=5\d$/);
    expect(second.age).toBeGreaterThanOrEqual(1);
    expect(s.calls('/a')).toBe(1);
  });

  it('max-age expires: the answer is fetched again', async () => {
    const s = await setup(counting({ 'cache-control': 'max-age=1' }));
    await s.get('/a');
    await sleep(1200);
    const again = await s.get('/a');
    expect(again.body).toBe('answer 2');
    // Nothing to revalidate with (no validator, no stale window): the entry is gone.
    expect(again.cacheStatus).toBe('spillway; fwd=uri-miss; fwd-status=200; stored');
    expect(s.calls()).toBe(2);
  });

  it('s-maxage wins over max-age for the shared cache', async () => {
    const s = await setup(counting({ 'cache-control': 'max-age=0, s-maxage=60' }));
    await s.get('/a');
    const second = await s.get('/a');
    expect(second.body).toBe('answer 1');
    expect(second.cacheStatus).toContain('hit');
  });

  it('Expires alone gives freshness', async () => {
    const s = await setup(counting({ expires: new Date(Date.now() + 60_000).toUTCString(), date: new Date().toUTCString() }));
    await s.get('/a');
    expect((await s.get('/a')).cacheStatus).toContain('hit');
    expect(s.calls()).toBe(1);
  });

  it('no freshness information: not reused, unless the route sets defaultTtl', async () => {
    const plain = await setup(counting({}));
    await plain.get('/a');
    expect((await plain.get('/a')).body).toBe('answer 2');
    const ttl = await setup(counting({}), '{ defaultTtl: 30s }');
    await ttl.get('/a');
    const hit = await ttl.get('/a');
    expect(hit.body).toBe('answer 1');
    expect(hit.cacheStatus).toContain('hit');
  });

  it('defaultTtl applies to 200 answers, not to errors such as 404', async () => {
    const s = await setup((req, res) => {
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain' });
      res.end(req.url);
    }, '{ defaultTtl: 30s }');
    await s.get('/missing');
    expect((await s.get('/missing')).status).toBe(404);
    expect(s.calls('/missing')).toBe(2);
  });

  it.each([
    ['no-store', 'no-store, max-age=60'],
    ['private', 'private, max-age=60'],
  ])('%s answers are never stored', async (_name, cc) => {
    const s = await setup(counting({ 'cache-control': cc }));
    const first = await s.get('/a');
    expect(first.cacheStatus).not.toContain('stored');
    expect((await s.get('/a')).body).toBe('answer 2');
  });

  it('no-cache: stored, but revalidated before every use (ETag → 304 → stored body)', async () => {
    let calls = 0;
    const s = await setup((req, res) => {
      calls++;
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'no-cache' });
        res.end();
        return;
      }
      res.writeHead(200, { etag: '"v1"', 'cache-control': 'no-cache', 'content-type': 'text/plain' });
      res.end('body v1');
    });
    await s.get('/a');
    const second = await s.get('/a');
    expect(second.status).toBe(200);
    expect(second.body).toBe('body v1');
    expect(second.cacheStatus).toBe('spillway; fwd=stale; fwd-status=304; ttl=0; stored');
    expect(s.backend.received[1]!.headers['if-none-match']).toBe('"v1"');
    expect(calls).toBe(2);
  });

  it('a stale entry with an ETag is revalidated: 304 refreshes it, Age restarts', async () => {
    const s = await setup((req, res) => {
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' });
        res.end();
        return;
      }
      res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=1', 'content-type': 'text/plain' });
      res.end('body v1');
    });
    await s.get('/a');
    await sleep(1200);
    const revalidated = await s.get('/a');
    expect(revalidated.body).toBe('body v1');
    expect(revalidated.cacheStatus).toMatch(/fwd=stale; fwd-status=304; ttl=\d+; stored/);
    const hit = await s.get('/a');
    expect(hit.cacheStatus).toContain('hit');
    expect(hit.age).toBeLessThan(2);
    expect(s.calls()).toBe(2);
  });

  it('Last-Modified revalidation sends If-Modified-Since', async () => {
    const lastModified = new Date(Date.now() - 3_600_000).toUTCString();
    const s = await setup((req, res) => {
      if (req.headers['if-modified-since'] === lastModified) {
        res.writeHead(304, { 'last-modified': lastModified });
        res.end();
        return;
      }
      res.writeHead(200, { 'last-modified': lastModified, 'cache-control': 'max-age=0', 'content-type': 'text/plain' });
      res.end('lm body');
    });
    await s.get('/a');
    const second = await s.get('/a');
    expect(second.body).toBe('lm body');
    expect(second.cacheStatus).toContain('fwd-status=304');
  });

  it('must-revalidate: reused while fresh', async () => {
    const s = await setup(counting({ 'cache-control': 'max-age=60, must-revalidate' }));
    await s.get('/a');
    expect((await s.get('/a')).cacheStatus).toContain('hit');
    expect(s.calls()).toBe(1);
  });

  it('HEAD is answered from a stored GET, without a body', async () => {
    const s = await setup(counting({ 'cache-control': 'max-age=60' }));
    await s.get('/a');
    const head = await s.get('/a', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.cacheStatus).toContain('hit');
    expect(head.headers.get('content-length')).toBe('8');
    expect(s.calls()).toBe(1);
  });

  it('a client If-None-Match matching the stored ETag gets 304 from the cache', async () => {
    const s = await setup((_req, res) => {
      res.writeHead(200, { etag: '"e1"', 'cache-control': 'max-age=60' });
      res.end('x');
    });
    await s.get('/a');
    // node:http, not fetch: fetch adds Cache-Control: no-cache to conditional requests.
    const conditional = await httpRequest(`${s.gw.url}/a`, { headers: { 'if-none-match': '"e1"' } });
    expect(conditional.status).toBe(304);
    expect(conditional.headers['cache-status']).toContain('hit');
    expect(s.calls()).toBe(1);
  });

  it('the query is part of the key, in any parameter order', async () => {
    const s = await setup((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(req.url);
    });
    await s.get('/a?x=1&y=2');
    expect((await s.get('/a?y=2&x=1')).body).toBe('/a?x=1&y=2');
    expect((await s.get('/a?x=2')).body).toBe('/a?x=2');
    expect(s.calls()).toBe(2);
  });

  it('an answer larger than maxBody is passed on whole but not stored (known length or streamed)', async () => {
    const s = await setup((req, res) => {
      const body = 'x'.repeat(4096);
      if (req.url === '/chunked') {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.write(body.slice(0, 2048));
        res.end(body.slice(2048));
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(body.length) });
      res.end(body);
    }, '{ maxBody: 1kb }');
    for (const path of ['/sized', '/chunked']) {
      expect((await s.get(path)).body.length).toBe(4096);
      const again = await s.get(path);
      expect(again.body.length).toBe(4096);
      expect(again.cacheStatus).not.toContain('hit');
      expect(s.calls(path)).toBe(2);
    }
  });

  it('POST and other methods pass through (Cache-Status fwd=method)', async () => {
    const s = await setup(counting({ 'cache-control': 'max-age=60' }));
    const post = await s.get('/a', { 'content-type': 'text/plain' }, 'POST', 'x');
    expect(post.cacheStatus).toBe('spillway; fwd=method; fwd-status=200');
    await s.get('/a', {}, 'POST', 'x');
    expect(s.calls()).toBe(2);
  });
});

describe('Vary', () => {
  it('keeps one variant per value of the header the answer varies on', async () => {
    const s = await setup((req, res) => {
      res.writeHead(200, { vary: 'Accept-Language', 'cache-control': 'max-age=60' });
      res.end(`lang ${req.headers['accept-language']}`);
    });
    await s.get('/a', { 'accept-language': 'en' });
    const fr = await s.get('/a', { 'accept-language': 'fr' });
    expect(fr.body).toBe('lang fr');
    expect(fr.cacheStatus).toContain('fwd=vary-miss');
    expect((await s.get('/a', { 'accept-language': 'en' })).body).toBe('lang en');
    expect((await s.get('/a', { 'accept-language': 'fr' })).body).toBe('lang fr');
    expect(s.calls()).toBe(2);
  });

  it('revalidating one variant keeps the others', async () => {
    const s = await setup((req, res) => {
      const lang = String(req.headers['accept-language']);
      const etag = `"${lang}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag, vary: 'Accept-Language', 'cache-control': 'max-age=60' });
        res.end();
        return;
      }
      res.writeHead(200, { etag, vary: 'Accept-Language', 'cache-control': 'max-age=1' });
      res.end(`lang ${lang}`);
    });
    await s.get('/v', { 'accept-language': 'en' });
    await s.get('/v', { 'accept-language': 'fr' });
    await sleep(1100);
    const en = await s.get('/v', { 'accept-language': 'en' });
    expect(en.body).toBe('lang en');
    expect(en.cacheStatus).toContain('fwd-status=304');
    const fr = await s.get('/v', { 'accept-language': 'fr' });
    expect(fr.body).toBe('lang fr');
    expect(fr.cacheStatus).toContain('fwd-status=304');
    expect((await s.get('/v', { 'accept-language': 'en' })).cacheStatus).toContain('hit');
    expect((await s.get('/v', { 'accept-language': 'fr' })).cacheStatus).toContain('hit');
    expect(s.calls()).toBe(4);
  });

  it('Vary: * is never stored', async () => {
    const s = await setup(counting({ vary: '*', 'cache-control': 'max-age=60' }));
    await s.get('/a');
    expect((await s.get('/a')).body).toBe('answer 2');
  });
});

describe('shared-cache rules', () => {
  it('a request with Authorization is not stored, unless the answer says public or s-maxage', async () => {
    const s = await setup((req, res) => {
      const cc = req.url === '/public' ? 'public, max-age=60' : req.url === '/smaxage' ? 's-maxage=60' : 'max-age=60';
      res.writeHead(200, { 'cache-control': cc });
      res.end(`for ${req.headers.authorization}`);
    });
    const auth = { authorization: 'Bearer alice' };
    await s.get('/plain', auth);
    expect((await s.get('/plain', { authorization: 'Bearer bob' })).body).toBe('for Bearer bob');
    await s.get('/public', auth);
    expect((await s.get('/public', auth)).cacheStatus).toContain('hit');
    await s.get('/smaxage', auth);
    expect((await s.get('/smaxage', auth)).cacheStatus).toContain('hit');
    expect(s.calls('/plain')).toBe(2);
    expect(s.calls('/public')).toBe(1);
  });

  it('an answer with Set-Cookie is not stored unless public; the stored copy never carries the cookie', async () => {
    const s = await setup((req, res) => {
      const cc = req.url === '/public' ? 'public, max-age=60' : 'max-age=60';
      res.writeHead(200, { 'cache-control': cc, 'set-cookie': 'session=alice' });
      res.end('cookie answer');
    });
    const first = await s.get('/private-ish');
    expect(first.headers.get('set-cookie')).toBe('session=alice');
    expect((await s.get('/private-ish')).cacheStatus).not.toContain('hit');
    expect(s.calls('/private-ish')).toBe(2);
    const miss = await s.get('/public');
    expect(miss.headers.get('set-cookie')).toBe('session=alice');
    const hit = await s.get('/public');
    expect(hit.cacheStatus).toContain('hit');
    expect(hit.headers.get('set-cookie')).toBeNull();
  });
});

describe('poisoning', () => {
  it('an unkeyed X-Forwarded-Host (or Host) changes nothing stored', async () => {
    const s = await setup((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/html' });
      res.end(`<script src="https://${req.headers['x-forwarded-host']}/app.js">`);
    });
    const attack = await s.get('/home', { 'x-forwarded-host': 'evil.example' });
    expect(attack.cacheStatus).toContain('detail="unkeyed-header: x-forwarded-host"');
    expect(attack.cacheStatus).not.toContain('stored');
    const victim = await s.get('/home');
    expect(victim.body).not.toContain('evil');
    const again = await s.get('/home');
    expect(again.cacheStatus).toContain('hit');
    expect(again.body).toBe(victim.body);
    expect(again.body).not.toContain('evil');
    // An attacker that finds the entry stored gets the clean one.
    expect((await s.get('/home', { 'x-forwarded-host': 'evil.example' })).body).not.toContain('evil');
  });

  it('a header the route keys by is part of the key', async () => {
    const s = await setup((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`tenant ${req.headers['x-tenant']}`);
    }, '{ keyBy: [x-tenant] }');
    await s.get('/a', { 'x-tenant': 'one' });
    expect((await s.get('/a', { 'x-tenant': 'two' })).body).toBe('tenant two');
    expect((await s.get('/a', { 'x-tenant': 'one' })).body).toBe('tenant one');
    expect(s.calls()).toBe(2);
  });
});
