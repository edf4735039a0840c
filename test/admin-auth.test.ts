// The admin listener's contract: a token (bearer or a browser session cookie) guards /admin/*;
// /healthz and /readyz are always open, /metrics unless metricsToken; without a token it is open
// on loopback only, to loopback Host names and JSON writes with no foreign Origin; beyond
// loopback without a token every /admin/* request is 401 and the start-up log says so.

import { describe, expect, it } from 'vitest';
import { runCli, startGateway, writeTempConfig } from './helpers/gateway.js';
import { httpRequest, type SimpleResponse } from './helpers/http.js';
import { perTest } from './helpers/per-test.js';
import { writeFile } from 'node:fs/promises';
import { loadConfigFile } from '../src/config/load.js';
import { Gateway } from '../src/listener/gateway.js';
import { createLogger } from '../src/telemetry/logger.js';
import { LogCapture } from './helpers/gateway.js';

const TOKEN = 'admin-token-0123456789abcdef';
const OTHER = 'other-token-fedcba9876543210';
const BASE = `upstreams:
  app: { backends: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - { upstream: app }
`;

const live = perTest(() => {
  delete process.env.SPILLWAY_ADMIN_TOKEN;
});

async function start(admin: string) {
  live.gateway = await startGateway(`listen: { host: 127.0.0.1, port: 0 }\nadmin: { ${admin} }\n${BASE}`);
  return live.gateway;
}

/** A gateway started from a real file whose admin section gets `admin` (rewrite: a new one, then reload). */
async function startFromFile(admin: string) {
  const text = (extra: string) =>
    `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0${extra ? `, ${extra}` : ''} }\n${BASE}`;
  const file = await writeTempConfig(text(admin));
  const loaded = await loadConfigFile(file);
  const logs = new LogCapture();
  const gateway = new Gateway(loaded.config, { file, source: loaded.source, logger: createLogger('info', logs) });
  await gateway.listen();
  live.gateway = { gateway, url: gateway.url, adminUrl: gateway.adminUrl, logs, close: () => gateway.close(1000) };
  return { ...live.gateway, rewrite: (next: string) => writeFile(file, text(next)) };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function expectProblem(response: SimpleResponse, status: number, type: string): void {
  expect(response.status).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(JSON.parse(response.body)).toMatchObject({ type: `urn:spillway:problem:${type}`, status });
}

describe('admin listener with admin.token', () => {
  it('answers /admin/* 401 without the token or with a wrong one, and serves it with the bearer token', async () => {
    const gw = await start(`host: 127.0.0.1, port: 0, token: ${TOKEN}`);
    for (const path of ['/admin/upstreams', '/admin/routes', '/admin/config', '/admin/events']) {
      const none = await httpRequest(gw.adminUrl + path);
      expectProblem(none, 401, 'admin-unauthorized');
      expect(none.headers['www-authenticate']).toMatch(/^Bearer /);
      expectProblem(await httpRequest(gw.adminUrl + path, { headers: bearer(OTHER) }), 401, 'admin-unauthorized');
      // Same length, one character off: still refused.
      expectProblem(await httpRequest(gw.adminUrl + path, { headers: bearer(`${TOKEN.slice(0, -1)}0`) }), 401, 'admin-unauthorized');
      expect((await httpRequest(gw.adminUrl + path, { headers: bearer(TOKEN) })).status).toBe(200);
    }
    expectProblem(await httpRequest(`${gw.adminUrl}/admin/reload`, { method: 'POST' }), 401, 'admin-unauthorized');
    // With a token any Host is fine (a name in front of the admin listener).
    const named = await httpRequest(`${gw.adminUrl}/admin/upstreams`, { headers: { ...bearer(TOKEN), host: 'admin.example.com' } });
    expect(named.status).toBe(200);
  });

  it('/healthz and /readyz never need the token; /metrics is open unless admin.metricsToken', async () => {
    const gw = await start(`host: 127.0.0.1, port: 0, token: ${TOKEN}`);
    expect((await httpRequest(`${gw.adminUrl}/healthz`)).status).toBe(200);
    expect((await httpRequest(`${gw.adminUrl}/readyz`)).status).toBe(200);
    const metrics = await httpRequest(`${gw.adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('spillway_');
    await gw.close();

    const locked = await start(`host: 127.0.0.1, port: 0, token: ${TOKEN}, metricsToken: true`);
    expectProblem(await httpRequest(`${locked.adminUrl}/metrics`), 401, 'admin-unauthorized');
    expectProblem(await httpRequest(`${locked.adminUrl}/metrics`, { headers: bearer(OTHER) }), 401, 'admin-unauthorized');
    const scraped = await httpRequest(`${locked.adminUrl}/metrics`, { headers: bearer(TOKEN) });
    expect(scraped.status).toBe(200);
    expect(scraped.body).toContain('spillway_');
    expect((await httpRequest(`${locked.adminUrl}/healthz`)).status).toBe(200);
    expect((await httpRequest(`${locked.adminUrl}/readyz`)).status).toBe(200);
  });

  it('a browser signs in with the token and gets an HttpOnly, SameSite session cookie that later GETs use', async () => {
    const gw = await start(`host: 127.0.0.1, port: 0, token: ${TOKEN}`);
    const form = await httpRequest(`${gw.adminUrl}/admin/login`);
    expect(form.status).toBe(200);
    expect(form.headers['content-type']).toMatch(/^text\/html/);
    expect(form.body).toMatch(/<form method="post" action="\/admin\/session">/);
    expect(form.body).toMatch(/name="token" type="password"/);

    const formType = { 'content-type': 'application/x-www-form-urlencoded' };
    const wrong = await httpRequest(`${gw.adminUrl}/admin/session`, { method: 'POST', headers: formType, body: `token=${OTHER}` });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();

    const signIn = await httpRequest(`${gw.adminUrl}/admin/session`, {
      method: 'POST',
      headers: formType,
      body: new URLSearchParams({ token: TOKEN }).toString(),
    });
    expect(signIn.status).toBe(303);
    expect(signIn.headers.location).toBe('/console');
    const setCookie = signIn.headers['set-cookie']?.[0] ?? '';
    expect(setCookie).toMatch(/^spillway_admin=[^;]+;/);
    expect(setCookie).toMatch(/;\s*HttpOnly/i);
    expect(setCookie).toMatch(/;\s*SameSite=Strict/i);
    expect(setCookie).toMatch(/;\s*Path=\//);
    const cookie = setCookie.split(';')[0]!;

    for (const path of ['/admin/upstreams', '/admin/routes', '/admin/config', '/admin/events', '/console']) {
      expect((await httpRequest(gw.adminUrl + path, { headers: { cookie } })).status).toBe(200);
    }
    // Without a session the console page sends the browser to the sign-in form.
    const anonymous = await httpRequest(`${gw.adminUrl}/console`);
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.location).toBe('/admin/login');
    // A cookie value not signed with the token, or a stale one, is worth nothing.
    const forged = `spillway_admin=${cookie.split('=')[1]!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))}`;
    expectProblem(await httpRequest(`${gw.adminUrl}/admin/upstreams`, { headers: { cookie: forged } }), 401, 'admin-unauthorized');
    expectProblem(
      await httpRequest(`${gw.adminUrl}/admin/upstreams`, { headers: { cookie: 'spillway_admin=0.AAAA' } }),
      401,
      'admin-unauthorized',
    );

    // JSON sign-in (scripts, a console page) answers JSON.
    const json = await httpRequest(`${gw.adminUrl}/admin/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: TOKEN }),
    });
    expect(json.status).toBe(200);
    expect(JSON.parse(json.body)).toMatchObject({ signedIn: true });

    const signOut = await httpRequest(`${gw.adminUrl}/admin/session`, { method: 'DELETE', headers: { cookie } });
    expect(signOut.status).toBe(204);
    expect(signOut.headers['set-cookie']?.[0]).toMatch(/^spillway_admin=;.*Max-Age=0/);
  });

  it('a cookie-authenticated reload still needs a JSON content type and no foreign Origin', async () => {
    const gw = await startFromFile(`token: ${TOKEN}`);
    const signIn = await httpRequest(`${gw.adminUrl}/admin/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: TOKEN }),
    });
    const cookie = (signIn.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
    const host = new URL(gw.adminUrl).host;
    const reload = (headers: Record<string, string>) =>
      httpRequest(`${gw.adminUrl}/admin/reload`, { method: 'POST', headers: { cookie, ...headers } });
    expectProblem(await reload({ 'content-type': 'text/plain' }), 403, 'admin-forbidden');
    expectProblem(await reload({ 'content-type': 'application/x-www-form-urlencoded' }), 403, 'admin-forbidden');
    expectProblem(await reload({ 'content-type': 'application/json', origin: 'http://evil.example' }), 403, 'admin-forbidden');
    expect(gw.gateway.reloader.counts.ok).toBe(0);
    expect((await reload({ 'content-type': 'application/json', origin: `http://${host}` })).status).toBe(200);
    // The bearer token needs neither (curl -X POST -H "Authorization: Bearer ...").
    expect((await httpRequest(`${gw.adminUrl}/admin/reload`, { method: 'POST', headers: bearer(TOKEN) })).status).toBe(200);
    expect(gw.gateway.reloader.counts.ok).toBe(2);
  });

  it('a reload picks up a new admin.token, and a new SPILLWAY_ADMIN_TOKEN', async () => {
    const gw = await startFromFile(`token: ${TOKEN}`);
    await gw.rewrite(`token: ${OTHER}`);
    expect((await httpRequest(`${gw.adminUrl}/admin/reload`, { method: 'POST', headers: bearer(TOKEN) })).status).toBe(200);
    expectProblem(await httpRequest(`${gw.adminUrl}/admin/upstreams`, { headers: bearer(TOKEN) }), 401, 'admin-unauthorized');
    expect((await httpRequest(`${gw.adminUrl}/admin/upstreams`, { headers: bearer(OTHER) })).status).toBe(200);

    // The file sets no token any more: the environment variable stands in, read again by the reload.
    await gw.rewrite('');
    process.env.SPILLWAY_ADMIN_TOKEN = TOKEN;
    expect((await httpRequest(`${gw.adminUrl}/admin/reload`, { method: 'POST', headers: bearer(OTHER) })).status).toBe(200);
    expectProblem(await httpRequest(`${gw.adminUrl}/admin/upstreams`, { headers: bearer(OTHER) }), 401, 'admin-unauthorized');
    expect((await httpRequest(`${gw.adminUrl}/admin/upstreams`, { headers: bearer(TOKEN) })).status).toBe(200);
    // A token change takes effect at once: no "takes effect on restart" warning.
    expect(gw.gateway.reloader.last?.warnings).toEqual([]);
  });
});

describe('admin listener on loopback without a token', () => {
  it('stays open, but a reload needs a JSON content type and no foreign Origin', async () => {
    const gw = await startFromFile('');
    const host = new URL(gw.adminUrl).host;
    const reload = (headers: Record<string, string>, body?: string) =>
      httpRequest(`${gw.adminUrl}/admin/reload`, { method: 'POST', headers, ...(body === undefined ? {} : { body }) });
    // What a cross-site page can send without a CORS preflight.
    expectProblem(await reload({ 'content-type': 'text/plain' }, 'x'), 403, 'admin-forbidden');
    expectProblem(await reload({ 'content-type': 'application/x-www-form-urlencoded' }, 'a=1'), 403, 'admin-forbidden');
    expectProblem(await reload({}), 403, 'admin-forbidden');
    expectProblem(await reload({ 'content-type': 'application/json', origin: 'http://evil.example' }), 403, 'admin-forbidden');
    expectProblem(await reload({ 'content-type': 'application/json', origin: 'null' }), 403, 'admin-forbidden');
    expect(gw.gateway.reloader.counts).toMatchObject({ ok: 0, rejected: 0 });
    expect((await reload({ 'content-type': 'application/json' })).status).toBe(200);
    expect((await reload({ 'content-type': 'application/json; charset=utf-8', origin: `http://${host}` }, '{}')).status).toBe(200);
    expect(gw.gateway.reloader.counts.ok).toBe(2);
    expect((await httpRequest(`${gw.adminUrl}/admin/upstreams`)).status).toBe(200);
  });

  it('answers admin requests only for loopback Host names (DNS rebinding)', async () => {
    const gw = await start('host: 127.0.0.1, port: 0');
    const port = new URL(gw.adminUrl).port;
    for (const path of ['/admin/upstreams', '/admin/config', '/admin/routes']) {
      expectProblem(await httpRequest(gw.adminUrl + path, { headers: { host: `rebind.evil.example:${port}` } }), 403, 'admin-forbidden');
      expectProblem(await httpRequest(gw.adminUrl + path, { headers: { host: `10.0.0.1:${port}` } }), 403, 'admin-forbidden');
      for (const name of ['localhost', '127.0.0.1', '[::1]', 'LOCALHOST']) {
        expect((await httpRequest(gw.adminUrl + path, { headers: { host: `${name}:${port}` } })).status).toBe(200);
      }
    }
    // Probes and scrapes are not admin requests.
    expect((await httpRequest(`${gw.adminUrl}/healthz`, { headers: { host: 'rebind.evil.example' } })).status).toBe(200);
    expect((await httpRequest(`${gw.adminUrl}/metrics`, { headers: { host: 'rebind.evil.example' } })).status).toBe(200);
  });
});

describe('admin listener beyond loopback without a token', () => {
  it('serves health, readiness and metrics, answers /admin/* 401, and warns at start how to set a token', async () => {
    // 0.0.0.0 is not loopback; the test still only talks to 127.0.0.1.
    const gw = await start('host: 0.0.0.0, port: 0');
    const admin = gw.adminUrl.replace('0.0.0.0', '127.0.0.1');
    for (const path of ['/healthz', '/readyz', '/metrics']) expect((await httpRequest(admin + path)).status).toBe(200);
    for (const path of ['/admin/upstreams', '/admin/routes', '/admin/config', '/admin/events', '/admin/login', '/admin/anything']) {
      const response = await httpRequest(admin + path);
      expectProblem(response, 401, 'admin-unauthorized');
      expect(JSON.parse(response.body).detail).toContain('SPILLWAY_ADMIN_TOKEN');
    }
    expectProblem(
      await httpRequest(`${admin}/admin/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } }),
      401,
      'admin-unauthorized',
    );
    expectProblem(await httpRequest(`${admin}/admin/upstreams`, { headers: bearer(TOKEN) }), 401, 'admin-unauthorized');
    const [warning] = gw.logs.events('admin.no_token');
    expect(warning).toMatchObject({ level: 40, host: '0.0.0.0' });
    expect(String(warning?.msg)).toMatch(/admin\.token .*SPILLWAY_ADMIN_TOKEN/);
  });

  it('with a token it serves /admin/* to the bearer and logs no warning', async () => {
    const gw = await start(`host: 0.0.0.0, port: 0, token: ${TOKEN}`);
    const admin = gw.adminUrl.replace('0.0.0.0', '127.0.0.1');
    expect((await httpRequest(`${admin}/admin/upstreams`, { headers: bearer(TOKEN) })).status).toBe(200);
    expectProblem(await httpRequest(`${admin}/admin/upstreams`), 401, 'admin-unauthorized');
    expect(gw.logs.events('admin.no_token')).toEqual([]);
  });

  it('`spillway check` warns for an admin listener beyond loopback without a token', async () => {
    const file = await writeTempConfig(`admin: { host: 0.0.0.0 }\n${BASE}`);
    const bare = await runCli(['check', '--config', file], { SPILLWAY_ADMIN_TOKEN: '' });
    expect(bare.code).toBe(0);
    expect(bare.stderr).toMatch(/^warning: .* admin: the admin listener binds 0\.0\.0\.0, .*401.*SPILLWAY_ADMIN_TOKEN/m);
    const withToken = await runCli(['check', '--config', file], { SPILLWAY_ADMIN_TOKEN: TOKEN });
    expect(withToken.code).toBe(0);
    expect(withToken.stderr).toBe('');
    const tooShort = await runCli(['check', '--config', file], { SPILLWAY_ADMIN_TOKEN: 'short' });
    expect(tooShort.code).toBe(1);
    expect(tooShort.stderr).toMatch(/admin\.token .*at least 16 characters/);
    expect(tooShort.stderr).not.toContain('short"');
  });
});
