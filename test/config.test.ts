import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { gatewayJsonSchema } from '../src/config/schema/index.js';
import { parseDuration, parseSize } from '../src/config/units.js';
import { ROOT, runCli, writeTempConfig } from './helpers/gateway.js';
import { issuesOf, expectCheckPasses } from './helpers/config.js';

const VALID = `upstreams:
  llm:
    backends:
      - { url: http://127.0.0.1:9001, priority: 1, weight: 2 }
      - { url: http://127.0.0.1:9002 }
routes:
  - match: { path: /v1/ }
    upstream: llm
`;

describe('units', () => {
  it('durations and sizes', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseDuration('10')).toBeUndefined();
    expect(parseDuration('ten seconds')).toBeUndefined();
    expect(parseSize('64kb')).toBe(65_536);
    expect(parseSize('1mb')).toBe(1_048_576);
    expect(parseSize('1.5 MB')).toBe(1_572_864);
    expect(parseSize('12parsecs')).toBeUndefined();
  });
});

describe('config validation', () => {
  it('fills documented defaults', () => {
    const { config } = parseConfigText(VALID, 'gateway.yaml', {});
    expect(config.listen).toEqual({
      host: '0.0.0.0',
      port: 8080,
      http2: false,
      trustedProxies: [],
      timeouts: { requestHeaders: 10_000, requestBodyIdle: 30_000, requestBody: 300_000, keepAliveIdle: 75_000 },
      http2Limits: { maxConcurrentStreams: 100, maxResetsPerSecond: 100 },
    });
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 9901, metricsToken: false });
    const llm = config.upstreams.llm!;
    expect(llm.balance).toBe('priority');
    expect(llm.throttle).toEqual({
      statuses: [429, 503],
      defaultCooldown: 10_000,
      minCooldown: 0,
      maxCooldown: 300_000,
      predictive: { lowWater: undefined },
    });
    expect(llm.failover).toEqual({ replayBuffer: 1_048_576 });
    expect(llm.timeouts).toEqual({ connect: 2_000, headers: 60_000, idle: 60_000, websocketIdle: 300_000 });
    expect(llm.backends[1]).toEqual({ url: 'http://127.0.0.1:9002', priority: 1, weight: 1 });
    expect(config.limits.maxRequestBody).toBe(10 * 1024 * 1024);
  });

  it('names file:line:column and the field path', () => {
    const issues = issuesOf(`upstreams:
  llm:
    backends:
      - { url: http://127.0.0.1:9001 }
      - { url: http://127.0.0.1:9002, priority: -1 }
routes:
  - match: { path: /v1/ }
    upstream: llm
`);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: 'gateway.yaml', line: 5, path: 'upstreams.llm.backends[1].priority' });
    expect(issues[0]!.message).toMatch(/>0|positive|greater/i);
  });

  it('reports every problem at once, each at its line', () => {
    const issues = issuesOf(`upstreams:
  llm:
    balance: fastest
    backends:
      - { url: "not a url" }
    throttle: { defaultCooldown: 10 }
    timeouts: { conect: 2s }
routes:
  - match: { path: v1 }
    upstream: nope
`);
    const byPath = Object.fromEntries(issues.map((issue) => [issue.path, issue]));
    expect(byPath['upstreams.llm.balance']?.line).toBe(3);
    expect(byPath['upstreams.llm.backends[0].url']?.line).toBe(5);
    expect(byPath['upstreams.llm.throttle.defaultCooldown']?.message).toMatch(/duration/);
    expect(byPath['upstreams.llm.timeouts']?.message).toMatch(/conect/);
    expect(byPath['routes[0].match.path']?.line).toBe(9);
  });

  it('unknown upstream in a route, duplicate backends, bad cooldown bounds', () => {
    const issues = issuesOf(`upstreams:
  llm:
    backends: [ { url: http://a:1 }, { url: http://a:1 } ]
    throttle: { minCooldown: 10s, maxCooldown: 1s }
routes:
  - upstream: other
`);
    expect(issues.map((issue) => issue.path).sort()).toEqual([
      'routes[0].upstream',
      'upstreams.llm.backends[1].url',
      'upstreams.llm.throttle.minCooldown',
    ]);
    expect(issues.find((issue) => issue.path === 'routes[0].upstream')!.message).toContain('unknown upstream "other"');
  });

  it('YAML syntax errors and duplicate keys point at the line', () => {
    expect(issuesOf('upstreams:\n  llm: [\n')[0]!.line).toBeGreaterThan(0);
    expect(issuesOf(`${VALID}routes: []\n`)[0]!.message).toMatch(/unique|duplicate/i);
  });

  it('interpolates ${ENV} and ${ENV:-default}; a missing variable is an error at its line', () => {
    const yaml = `listen: { port: \${PORT:-8081} }\n${VALID.replace('http://127.0.0.1:9001', '"${PRIMARY:-http://127.0.0.1:7000}"').replace('http://127.0.0.1:9002', '"${SECOND}"')}`;
    const { config } = parseConfigText(yaml, 'g.yaml', { SECOND: 'http://10.0.0.2:80' });
    expect(config.upstreams.llm!.backends.map((b) => b.url)).toEqual(['http://127.0.0.1:7000', 'http://10.0.0.2:80']);
    expect(config.listen.port).toBe(8081);
    expect(parseConfigText(yaml, 'g.yaml', { SECOND: 'http://b:1', PORT: '9000' }).config.listen.port).toBe(9000);
    const issues = issuesOf(yaml, {});
    expect(issues[0]).toMatchObject({ line: 6 });
    expect(issues[0]!.message).toContain('SECOND');
  });

  it('${...} works unquoted inside flow maps, never parses a value as YAML, and $${ escapes', () => {
    const yaml = VALID.replace('http://127.0.0.1:9002', '${SECOND}')
      .replace('routes:', '# a comment mentioning ${UNSET_IN_COMMENT}\nroutes:')
      .replace('/v1/', () => '"/v1/$${literal}"');
    const { config } = parseConfigText(yaml, 'g.yaml', { SECOND: 'http://b:1/x,{y}: z' });
    expect(config.upstreams.llm!.backends[1]!.url).toBe('http://b:1/x,{y}: z');
    expect(config.routes[0]!.match.path).toBe('/v1/${literal}');
  });

  it('an empty or non-object file gets a clear error, not a crash', () => {
    expect(issuesOf('').length).toBeGreaterThan(0);
    expect(issuesOf('just a string').length).toBeGreaterThan(0);
  });
});

describe('spillway check', () => {
  it('exits 0 on a valid file and non-zero with file:line:col errors on a bad one', async () => {
    const good = await writeTempConfig(VALID);
    const ok = await runCli(['check', '--config', good]);
    expect(ok.code).toBe(0);
    const bad = await writeTempConfig(VALID.replace('weight: 2', 'weight: heavy'));
    const result = await runCli(['check', '--config', bad]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${bad}:4:`);
    expect(result.stderr).toContain('upstreams.llm.backends[0].weight');
    const missing = await runCli(['check', '--config', '/nonexistent/gateway.yaml']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('file not found');
  });

  it('every example in config/ passes check', async () => {
    await expectCheckPasses(join(ROOT, 'config/demo.yaml'));
  });

  it('config/schema.json is the exported JSON Schema, up to date', async () => {
    const committed = JSON.parse(await readFile(join(ROOT, 'config/schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(gatewayJsonSchema());
    const printed = await runCli(['schema']);
    expect(JSON.parse(printed.stdout)).toEqual(committed);
  });
});
