// The cooldown clock's input: whether an answer means "busy, come back later", and until when.

import type { CooldownDecision } from '../core/events.js';
import { readRetryHint, type ResponseHeaders } from './retry-hints.js';

/** How an upstream reads throttle answers (its `throttle:` block). */
export interface ThrottlePolicy {
  readonly statuses: ReadonlySet<number>;
  readonly defaultCooldown: number;
  readonly minCooldown: number;
  readonly maxCooldown: number;
  /** Steer before the 429 (on unless `predictive: false`); lowWater: the opt-in share lowering. */
  readonly predictive?: { readonly lowWater: number | undefined } | undefined;
}

/**
 * Decides whether a response means "busy, come back later" and for how long. 429 always does
 * (with defaultCooldown when it carries no usable hint); any other status listed in
 * throttle.statuses (503 by default) only when it carries a hint — a bare 503 is a failure,
 * which belongs to the breaker, never to both.
 */
export function throttleCooldown(
  status: number,
  headers: ResponseHeaders,
  policy: ThrottlePolicy,
  now: number,
): CooldownDecision | undefined {
  if (!policy.statuses.has(status)) return undefined;
  const hint = readRetryHint(headers, now);
  if (!hint && status !== 429) return undefined;
  const raw = hint ? hint.delayMs : policy.defaultCooldown;
  const delayMs = Math.ceil(Math.min(policy.maxCooldown, Math.max(policy.minCooldown, raw)));
  return {
    until: now + delayMs,
    delayMs,
    source: hint ? hint.source : 'default',
    value: hint ? hint.value : `${policy.defaultCooldown}ms`,
  };
}
