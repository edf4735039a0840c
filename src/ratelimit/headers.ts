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
  /** The RateLimit member's name: the policy, or "<policy>-quota" for its quota. */
  readonly policy: string;
  /** tokens: an LLM-token bucket, reported apart from request counts; quota: a calendar quota. */
  readonly kind?: 'tokens' | 'quota';
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

/** A quota's RateLimit-Policy member: `"name-quota";q=<limit>;w=<seconds of the period>`. */
export function quotaPolicyField(policy: string, limit: number, period: 'day' | 'week' | 'month'): string {
  const seconds = period === 'day' ? 86_400 : period === 'week' ? 604_800 : 2_592_000;
  return `"${policy}-quota";q=${limitField(limit)};w=${seconds}`;
}

export function limitField(capacity: number): string {
  return String(Math.floor(capacity));
}

const remainingOf = (report: PolicyReport) => Math.max(0, Math.floor(report.remaining));
const resetOf = (report: PolicyReport) => Math.max(0, Math.ceil(report.fullInMs / 1000));
const rateLimitMember = (report: PolicyReport) => `"${report.policy}";r=${remainingOf(report)};t=${resetOf(report)}`;

/**
 * Header fields for these reports. RateLimit / RateLimit-Policy list every policy (token buckets
 * and quotas under their own names); the X-RateLimit-Limit/-Remaining/-Reset fields come from the
 * tightest request-counting policy (`tightest` when given), and x-ratelimit-limit-tokens /
 * -remaining-tokens / -reset-tokens from the tightest token bucket: never mixed.
 */
export function rateLimitHeaders(reports: readonly PolicyReport[], tightest?: PolicyReport): Record<string, string> {
  if (reports.length === 0) return {};
  const single = reports.length === 1;
  const headers: Record<string, string> = {
    'ratelimit-policy': single ? reports[0]!.bucket.policyField : reports.map((r) => r.bucket.policyField).join(', '),
    ratelimit: single ? rateLimitMember(reports[0]!) : reports.map(rateLimitMember).join(', '),
  };
  const requests = pickTightest(reports, undefined, tightest);
  if (requests) {
    headers['x-ratelimit-limit'] = requests.bucket.limitField;
    headers['x-ratelimit-remaining'] = String(remainingOf(requests));
    headers['x-ratelimit-reset'] = String(resetOf(requests));
  }
  const tokens = pickTightest(reports, 'tokens', tightest);
  if (tokens) {
    headers['x-ratelimit-limit-tokens'] = tokens.bucket.limitField;
    headers['x-ratelimit-remaining-tokens'] = String(remainingOf(tokens));
    headers['x-ratelimit-reset-tokens'] = `${resetOf(tokens)}s`;
  }
  return headers;
}

function pickTightest(
  reports: readonly PolicyReport[],
  kind: 'tokens' | undefined,
  tightest: PolicyReport | undefined,
): PolicyReport | undefined {
  if (tightest && tightest.kind === kind) return tightest;
  let pick: PolicyReport | undefined;
  for (const report of reports) {
    if (report.kind !== kind) continue;
    if (!pick || remainingOf(report) < remainingOf(pick)) pick = report;
  }
  return pick;
}
