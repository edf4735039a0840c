// Helpers for the rate-limit tests: a counting backend, request bursts, observer capture, JWTs.

import { SignJWT } from 'jose';
import type { LimiterResult } from '../../src/core/events.js';
import { withDefaults, type ProxyObserver } from '../../src/snapshot/observer.js';

export interface Hit {
  status: number;
  headers: Headers;
  body: string;
  ms: number;
}

export async function hit(url: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<Hit> {
  const started = performance.now();
  const response = await fetch(url, { headers, ...init });
  const body = await response.text();
  return { status: response.status, headers: response.headers, body, ms: performance.now() - started };
}

/** `count` requests, `concurrency` at a time; returns every result in completion order. */
export async function burst(count: number, concurrency: number, send: (index: number) => Promise<Hit>): Promise<Hit[]> {
  const results: Hit[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) results.push(await send(next++));
    }),
  );
  return results;
}

/** `count` requests one after another; their statuses in order. */
export async function statusesInTurn(count: number, send: (index: number) => Promise<Hit>): Promise<number[]> {
  return (await burst(count, 1, send)).map((h) => h.status);
}

export function statusCounts(hits: ReadonlyArray<{ status: number }>): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const h of hits) counts[h.status] = (counts[h.status] ?? 0) + 1;
  return counts;
}

export interface LimiterEvents {
  observer: ProxyObserver;
  decisions: Array<{ policy: string; result: LimiterResult }>;
  degraded: Array<{ degraded: boolean; reason: string; at: number }>;
}

export function limiterEvents(): LimiterEvents {
  const decisions: LimiterEvents['decisions'] = [];
  const degraded: LimiterEvents['degraded'] = [];
  return {
    decisions,
    degraded,
    observer: withDefaults({
      limiterDecision: (policy, result) => decisions.push({ policy, result }),
      limiterDegraded: (isDegraded, reason) => degraded.push({ degraded: isDegraded, reason, at: Date.now() }),
    }),
  };
}

export function signHs256(claims: Record<string, unknown>, secret: string, expiresIn = '5m'): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(secret));
}

export { sleep } from './wait.js';

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}
