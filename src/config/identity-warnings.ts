// Warnings for configs that the request-path and client-identity hardening affects (printed by
// `spillway check` and logged at load; CHANGELOG.md, "Upgrade notes"):
// - a route keyed by a client header without `auth`: any invented value gets a fresh bucket, and
//   a request sending that header twice is now refused 400 instead of keyed by the joined value;
// - a rate-limit policy that trusts proxies the listener does not: their X-Forwarded-For,
//   X-Real-IP and Forwarded are now replaced before a backend sees them;
// - a path rule that can no longer match under the `paths` settings.

import type { GatewayConfig } from './schema/index.js';

export interface IdentityWarning {
  path: Array<string | number>;
  message: string;
}

export function identityWarnings(config: GatewayConfig): IdentityWarning[] {
  const warnings: IdentityWarning[] = [];
  config.routes.forEach((route, index) => {
    for (const name of route.rateLimit ?? []) {
      const policy = config.rateLimits[name];
      for (const part of policy?.key ?? []) {
        if (!part.startsWith('header:')) continue;
        const header = part.slice(7).toLowerCase();
        if (route.auth?.apiKeys?.header === header) continue;
        warnings.push({
          path: ['routes', index, 'rateLimit'],
          message:
            `policy "${name}" keys clients by ${header} without route auth: any invented value gets a fresh bucket ` +
            `(add auth: { apiKeys: ... } and key: auth). A request sending ${header} twice is now refused 400.`,
        });
      }
    }
    const pattern = route.match.exact ?? route.match.path ?? '/';
    if (pattern.includes(';') && config.paths.semicolons !== 'keep') {
      warnings.push({
        path: ['routes', index, 'match'],
        message: `rules see paths without ";" parameters (paths.semicolons: ${config.paths.semicolons}): this pattern never matches`,
      });
    }
    if (config.paths.trailingDotSpace === 'refuse' && /[.\s]\/|[^/.][.\s]$|%(2e|20|09)(\/|$)/i.test(pattern)) {
      warnings.push({
        path: ['routes', index, 'match'],
        message: 'a segment of this pattern ends in "." or whitespace, which paths.trailingDotSpace: refuse answers 400',
      });
    }
  });
  if (config.listen.trustedProxies.length === 0) {
    for (const [name, policy] of Object.entries(config.rateLimits)) {
      if (!policy.trustedProxies || policy.trustedProxies.length === 0) continue;
      warnings.push({
        path: ['rateLimits', name, 'trustedProxies'],
        message:
          'listen.trustedProxies is empty: X-Forwarded-For, X-Real-IP and Forwarded from these proxies are now replaced ' +
          'before forwarding (and stickyBy: ip uses the peer address); list them in listen.trustedProxies',
      });
    }
  }
  return warnings;
}
