// A rate-limit policy compiled for the request path: how to name the client (key parts, tiers,
// missing-key rule) and which bucket it gets. Key parts are resolved without allocation beyond
// the identity string; only jwt keys make identification asynchronous.

import type { IncomingMessage } from 'node:http';
import type { RateLimitPolicyConfig } from '../config/schema/ratelimit.js';
import { clientIpResolver, type ClientIpResolver } from '../core/client-ip.js';
import { REPEATED, singleHeader } from '../core/single-header.js';
import type { PolicyStore, RedisFailureMode } from './guarded-store.js';
import { limitField, policyField, quotaPolicyField } from './headers.js';
import type { QuotaPeriod } from './quota-period.js';
import { claimValue, jwtVerifier } from './jwt.js';

export interface PolicyBucket {
  readonly capacity: number;
  readonly refillPerMs: number;
  readonly cost: number;
  /** Tier name, undefined for the policy's own bucket. */
  readonly tier: string | undefined;
  /** This bucket's RateLimit-Policy member and X-RateLimit-Limit value (fixed per bucket). */
  readonly policyField: string;
  readonly limitField: string;
}

export interface ClientIdentity {
  /** Store key of this client's bucket. */
  readonly key: string;
  readonly bucket: PolicyBucket;
}

/** A key header sent more than once: the request is refused (400), never keyed by the joined value. */
export interface RepeatedKey {
  readonly repeated: string;
}

export type Identification = ClientIdentity | RepeatedKey | undefined;

export interface CompiledPolicy {
  readonly name: string;
  /** What the bucket counts: requests (`cost` each) or LLM tokens (estimated, then settled). */
  readonly unit: 'requests' | 'tokens';
  readonly quota: { readonly limit: number; readonly period: QuotaPeriod; readonly policyField: string } | undefined;
  readonly maxInFlight: number | undefined;
  readonly maxWaitMs: number;
  readonly onRedisError: RedisFailureMode;
  readonly store: PolicyStore;
  /**
   * The client's bucket; undefined when the key is missing and missingKey is deny. `authIdentity`
   * is what the route's `auth` proved (the `auth` key part).
   */
  identify(req: IncomingMessage, routeName: string, authIdentity?: string): Identification | Promise<Identification>;
}

interface RequestFacts {
  readonly claims: Record<string, unknown> | undefined;
  readonly authIdentity: string | undefined;
}

type PartReader = (req: IncomingMessage, routeName: string, facts: RequestFacts) => string | undefined | typeof REPEATED;

const SEPARATOR = '\u0001';

export function compilePolicy(
  name: string,
  config: RateLimitPolicyConfig,
  store: PolicyStore,
  defaultOnRedisError: RedisFailureMode,
  listenTrustedProxies: readonly string[] = [],
): CompiledPolicy {
  const bucket = (capacity: number, refillPerMs: number, cost: number, tier: string | undefined): PolicyBucket => ({
    capacity,
    refillPerMs,
    cost,
    tier,
    policyField: policyField(name, capacity, refillPerMs),
    limitField: limitField(capacity),
  });
  const base = bucket(config.capacity, config.refill, config.cost, undefined);
  const tiers = new Map<string, PolicyBucket>();
  for (const [tierName, tier] of Object.entries(config.tiers)) {
    const tierBucket = bucket(tier.capacity ?? base.capacity, tier.refill ?? base.refillPerMs, tier.cost ?? base.cost, tierName);
    for (const key of tier.keys) tiers.set(key, tierBucket);
  }
  const needsIp = config.key.includes('ip') || config.missingKey === 'ip';
  const clientIp: ClientIpResolver | undefined = needsIp ? clientIpResolver(config.trustedProxies ?? listenTrustedProxies) : undefined;
  const readers: PartReader[] = config.key.map((part) => partReader(part, clientIp));
  const tierParts = config.key.map((part) => part !== 'route');
  const verify = config.key.some((part) => part.startsWith('jwt:')) && config.jwt ? jwtVerifier(config.jwt) : undefined;

  const bucketFor = (values: readonly string[]): PolicyBucket => {
    if (tiers.size === 0) return base;
    for (let i = 0; i < values.length; i++) {
      if (!tierParts[i]) continue;
      const tier = tiers.get(values[i]!);
      if (tier) return tier;
    }
    return base;
  };

  const resolve = (req: IncomingMessage, routeName: string, facts: RequestFacts): Identification => {
    const values: string[] = [];
    for (const [index, read] of readers.entries()) {
      const value = read(req, routeName, facts);
      if (value === REPEATED) return { repeated: config.key[index]!.slice(7) };
      if (value === undefined) {
        if (config.missingKey !== 'ip') return undefined;
        const ip = clientIp!(req);
        return { key: store.keyFor(name, `${SEPARATOR}ip${SEPARATOR}${ip}`), bucket: tiers.get(ip) ?? base };
      }
      values.push(value);
    }
    return { key: store.keyFor(name, values.join(SEPARATOR)), bucket: bucketFor(values) };
  };

  return {
    name,
    unit: config.unit,
    quota: config.quota ? { ...config.quota, policyField: quotaPolicyField(name, config.quota.limit, config.quota.period) } : undefined,
    maxInFlight: config.maxInFlight,
    maxWaitMs: config.mode === 'queue' ? config.maxWait : 0,
    onRedisError: config.onRedisError ?? defaultOnRedisError,
    store,
    identify: verify
      ? async (req, routeName, authIdentity) =>
          resolve(req, routeName, { claims: (await verify(req)) as Record<string, unknown> | undefined, authIdentity })
      : (req, routeName, authIdentity) => resolve(req, routeName, { claims: undefined, authIdentity }),
  };
}

function partReader(part: string, clientIp: ClientIpResolver | undefined): PartReader {
  if (part === 'route') return (_req, routeName) => routeName;
  if (part === 'auth') return (_req, _route, facts) => facts.authIdentity;
  if (part === 'ip') return (req) => clientIp!(req) || undefined;
  if (part.startsWith('header:')) {
    const header = part.slice(7).toLowerCase();
    return (req) => {
      const value = singleHeader(req, header);
      if (value === REPEATED) return REPEATED;
      return value ? value.trim() || undefined : undefined;
    };
  }
  const claim = part.slice(4);
  return (_req, _route, { claims }) => (claims ? claimValue(claims, claim) : undefined);
}
