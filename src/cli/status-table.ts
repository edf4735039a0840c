// `spillway status`: the console's upstream table as plain text for a terminal.

import type { ConsoleBackendView, ConsoleView } from '../telemetry/console-view.js';
import type { DecisionEvent } from '../telemetry/event-buffer.js';

const HEADERS = ['backend', 'prio', 'weight', 'state', 'req/s', 'in-flight', '2xx', '429', '5xx', 'p50', 'p99', 'share'];
/** Columns aligned left (the rest are numbers, aligned right). */
const LEFT = new Set([0, 3]);

const ms = (value: number | null) => (value === null ? '-' : value < 10 ? `${value.toFixed(1)}ms` : `${Math.round(value)}ms`);
const rate = (value: number | null) => (value === null ? '-' : String(value));

function stateText(backend: ConsoleBackendView, now: number): string {
  if (backend.state === 'cooling' && backend.cooldownUntil !== null)
    return `cooling ${(Math.max(0, backend.cooldownUntil - now) / 1000).toFixed(1)}s`;
  if (backend.state === 'open' || backend.state === 'half-open') return `breaker ${backend.state}`;
  return backend.state;
}

function table(rows: string[][]): string {
  const widths = HEADERS.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (LEFT.has(column) ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatStatus(view: ConsoleView, decisions: readonly DecisionEvent[] = []): string {
  const out: string[] = [`${view.config.file}  loaded ${view.config.loadedAt}  (counts over the last ${view.windowSec} s)`];
  for (const upstream of view.upstreams) {
    out.push('', `${upstream.name} (${upstream.balance})`);
    const rows = upstream.backends.map((b) => [
      b.label,
      String(b.priority),
      String(b.weight),
      stateText(b, view.now),
      rate(b.reqPerSec),
      b.queued > 0 ? `${b.inFlight}+${b.queued}` : String(b.inFlight),
      String(b.lastMinute.ok),
      String(b.lastMinute.throttled),
      String(b.lastMinute.failed),
      ms(b.p50Ms),
      ms(b.p99Ms),
      b.share === null ? '-' : `${Math.round(b.share * 100)}%`,
    ]);
    out.push(table([HEADERS, ...rows]));
  }
  if (decisions.length > 0) {
    out.push('', 'recent decisions');
    for (const event of decisions) {
      const subject = [event.upstream, event.backend].filter((part) => typeof part === 'string').join(' / ');
      out.push(`  ${event.time.slice(11, 19)}  ${event.event}  ${subject ? `${subject}: ` : ''}${event.msg}`);
    }
  }
  return out.join('\n');
}
