// Rate-limit response fields: the IETF draft (draft-ietf-httpapi-ratelimit-headers)
//   RateLimit-Policy: "per-key";q=20;w=2        q = bucket capacity, w = seconds to refill it from empty
//   RateLimit: "per-key";r=13;t=1               r = tokens left, t = seconds until the bucket is full
// (one list member per policy of the route), and the widely parsed legacy X-RateLimit-Limit,
// -Remaining, -Reset (seconds until full) of the tightest policy.

/** The fixed fields of one bucket, rendered once when the policy is compiled. */
export interface BucketFields {
  readonly policyField: string;
  readonly limitField: string;
}

export interface PolicyReport {
  readonly policy: string;
  readonly bucket: BucketFields;
  readonly remaining: number;
  readonly fullInMs: number;
}

/** w: seconds to refill an empty bucket. */
export function windowSeconds(capacity: number, refillPerMs: number): number {
  return Math.max(1, Math.ceil(capacity / refillPerMs / 1000));
}

/** The RateLimit-Policy member of one bucket: `"name";q=<capacity>;w=<seconds>`. */
export function policyField(policy: string, capacity: number, refillPerMs: number): string {
  return `"${policy}";q=${limitField(capacity)};w=${windowSeconds(capacity, refillPerMs)}`;
}

export function limitField(capacity: number): string {
  return String(Math.floor(capacity));
}

const remainingOf = (report: PolicyReport) => Math.max(0, Math.floor(report.remaining));
const resetOf = (report: PolicyReport) => Math.max(0, Math.ceil(report.fullInMs / 1000));
const rateLimitMember = (report: PolicyReport) => `"${report.policy}";r=${remainingOf(report)};t=${resetOf(report)}`;

/** Header fields for these reports; `tightest` (default: fewest tokens left) feeds the X- fields. */
export function rateLimitHeaders(reports: readonly PolicyReport[], tightest?: PolicyReport): Record<string, string> {
  if (reports.length === 0) return {};
  let pick = tightest;
  if (!pick) {
    pick = reports[0]!;
    for (const report of reports) if (remainingOf(report) < remainingOf(pick)) pick = report;
  }
  const single = reports.length === 1;
  return {
    'ratelimit-policy': single ? reports[0]!.bucket.policyField : reports.map((r) => r.bucket.policyField).join(', '),
    ratelimit: single ? rateLimitMember(reports[0]!) : reports.map(rateLimitMember).join(', '),
    'x-ratelimit-limit': pick.bucket.limitField,
    'x-ratelimit-remaining': String(remainingOf(pick)),
    'x-ratelimit-reset': String(resetOf(pick)),
  };
}
