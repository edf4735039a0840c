// Calendar periods of quotas, in UTC: a day, an ISO week (Monday to Sunday) or a month. The
// period's id goes into the quota's store key, so a new period starts with a fresh allowance.

export type QuotaPeriod = 'day' | 'week' | 'month';

export interface PeriodWindow {
  /** "d2026-12-07", "w2026-12-07" (the Monday), "m2026-12". */
  readonly id: string;
  /** Milliseconds until the period ends (at least 1). */
  readonly endsInMs: number;
}

const DAY = 86_400_000;

export function periodWindow(period: QuotaPeriod, now: number): PeriodWindow {
  const date = new Date(now);
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth();
  const d = date.getUTCDate();
  let start: number;
  let end: number;
  if (period === 'day') {
    start = Date.UTC(y, m, d);
    end = start + DAY;
  } else if (period === 'week') {
    const sinceMonday = (date.getUTCDay() + 6) % 7;
    start = Date.UTC(y, m, d - sinceMonday);
    end = start + 7 * DAY;
  } else {
    start = Date.UTC(y, m, 1);
    end = Date.UTC(y, m + 1, 1);
  }
  const iso = new Date(start).toISOString();
  const id = period === 'month' ? `m${iso.slice(0, 7)}` : `${period[0]}${iso.slice(0, 10)}`;
  return { id, endsInMs: Math.max(1, end - now) };
}
