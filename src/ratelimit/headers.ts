// Rate-limit response fields: the IETF draft (draft-ietf-httpapi-ratelimit-headers)
//   RateLimit-Policy: "per-key";q=20;w=2        q = bucket capacity, w = seconds to refill it from empty
//   RateLimit: "per-key";r=13;t=1               r = tokens left, t = seconds until the bucket is full
// (one list member per policy of the route), and the widely parsed legacy X-RateLimit-Limit,
// -Remaining, -Reset (seconds until full) of the tightest policy.

import type { PolicyBucket } from './policy.js';

export interface PolicyReport {
  readonly policy: string;
  readonly bucket: PolicyBucket;
  readonly remaining: number;
  readonly fullInMs: number;
}

export function windowSeconds(bucket: PolicyBucket): number {
  return Math.max(1, Math.ceil(bucket.capacity / bucket.refillPerMs / 1000));
}

const remainingOf = (report: PolicyReport) => Math.max(0, Math.floor(report.remaining));
const resetOf = (report: PolicyReport) => Math.max(0, Math.ceil(report.fullInMs / 1000));

/** Header fields for these reports; `tightest` (default: fewest tokens left) feeds the X- fields. */
export function rateLimitHeaders(reports: readonly PolicyReport[], tightest?: PolicyReport): Record<string, string> {
  if (reports.length === 0) return {};
  let pick = tightest;
  if (!pick) {
    pick = reports[0]!;
    for (const report of reports) if (remainingOf(report) < remainingOf(pick)) pick = report;
  }
  return {
    'ratelimit-policy': reports.map((r) => `"${r.policy}";q=${formatNumber(r.bucket.capacity)};w=${windowSeconds(r.bucket)}`).join(', '),
    ratelimit: reports.map((r) => `"${r.policy}";r=${remainingOf(r)};t=${resetOf(r)}`).join(', '),
    'x-ratelimit-limit': formatNumber(pick.bucket.capacity),
    'x-ratelimit-remaining': String(remainingOf(pick)),
    'x-ratelimit-reset': String(resetOf(pick)),
  };
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Math.floor(value));
}
