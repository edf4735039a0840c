import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { issuesOf, expectCheckPasses } from './helpers/config.js';

const UPSTREAMS = `upstreams:
  users: { backends: [{ url: "http://127.0.0.1:9001" }] }
  orders: { backends: [{ url: "http://127.0.0.1:9002" }] }
`;

describe('aggregate config', () => {
  it('fills the documented defaults', () => {
    const { config } = parseConfigText(
      `${UPSTREAMS}routes:
  - match: { path: /api/dashboard/:userId }
    aggregate:
      parts:
        profile: { upstream: users, path: "/users/{userId}" }
`,
      'gateway.yaml',
      {},
    );
    const aggregate = config.routes[0]!.aggregate!;
    expect(aggregate).toMatchObject({ timeout: 5_000, merge: 'object', maxPartBody: 1_048_576 });
    expect(aggregate.headers).toBeUndefined();
    expect(aggregate.parts.profile).toEqual({ upstream: 'users', method: 'GET', path: '/users/{userId}', required: false });
  });

  it('names file:line:col for field mistakes', () => {
    const issues = issuesOf(`${UPSTREAMS}routes:
  - match: { path: /c }
    aggregate:
      timeout: soon
      parts:
        recs:
          upstream: users
          path: /r
          then:
            profile: { upstream: users, path: "/again/{recs.x}", method: FETCH }
`);
    const text = issues.map((issue) => `${issue.line} ${issue.path}: ${issue.message}`);
    expect(text).toEqual([
      '7 routes[0].aggregate.timeout: expected a duration with a unit, like "250ms", "10s" or "5m", got "soon"',
      expect.stringMatching(/^13 routes\[0\]\.aggregate\.parts\.recs\.then\.profile\.method: Invalid option/),
    ]);
  });

  it('a route has exactly one action; aggregate takes no rewrite or mirror', () => {
    const issues = issuesOf(`${UPSTREAMS}routes:
  - match: { path: /a }
    upstream: users
    aggregate:
      parts:
        p: { upstream: users, path: /x }
  - match: { path: /b }
    aggregate:
      parts:
        p: { upstream: users, path: /x }
    rewrite: { stripPrefix: /b }
    mirror: { upstream: orders }
`);
    const text = issues.map((issue) => `${issue.line} ${issue.path}: ${issue.message}`);
    expect(text).toEqual([
      '8 routes[0].aggregate: a route has exactly one action, found upstream and aggregate',
      '14 routes[1].rewrite: rewrite applies to upstream and split actions, not aggregate (parts have their own paths)',
      '15 routes[1].mirror: mirror applies to upstream and split actions, not aggregate',
    ]);
  });

  it('names file:line:col for every cross-check: unknown upstream, bad references and templates, duplicate names', () => {
    const issues = issuesOf(`${UPSTREAMS}routes:
  - match: { path: /c }
    aggregate:
      parts:
        profile: { upstream: nobody, path: "/users/{id" }
        orders: { upstream: orders, path: "/orders?c={profile.customerId}" }
        recs:
          upstream: users
          path: /r
          then:
            profile: { upstream: users, path: "/again/{recs.x}" }
            more: { upstream: users, path: "/more/{nobody.x}" }
`);
    const text = issues.map((issue) => `${issue.line} ${issue.path}: ${issue.message}`);
    expect(text).toEqual([
      '8 routes[0].aggregate.parts.profile.upstream: unknown upstream "nobody" (defined: users, orders)',
      '8 routes[0].aggregate.parts.profile.path: unclosed "{" in the path template',
      '9 routes[0].aggregate.parts.orders.path: "{profile.customerId}" uses part "profile", which this part does not run after (put it under profile.then)',
      '14 routes[0].aggregate.parts.recs.then.profile: part name "profile" is used twice in this aggregate',
      '15 routes[0].aggregate.parts.recs.then.more.path: "{nobody.x}" names no part of this aggregate',
    ]);
  });

  it('an empty parts map, a bad select and a part named _errors are refused', () => {
    const issues = issuesOf(`${UPSTREAMS}routes:
  - match: { path: /a }
    aggregate:
      parts: {}
  - match: { path: /b }
    aggregate:
      parts:
        p: { upstream: users, path: /x, select: "data..items" }
`);
    expect(issues.map((issue) => issue.message)).toEqual(
      expect.arrayContaining(['an aggregate needs at least one part', 'select is a dotted field path like "data.items"']),
    );
    expect(
      issuesOf(`${UPSTREAMS}routes:
  - match: { path: /a }
    aggregate:
      parts:
        _errors: { upstream: users, path: /y }
`).map((issue) => issue.message),
    ).toEqual(['"_errors" is where the answer lists failed parts; choose another part name']);
  });

  it('config/aggregate.yaml passes spillway check', async () => {
    await expectCheckPasses('config/aggregate.yaml');
  });
});
