// Hot-path Prometheus series. prom-client turns the label object into a key string on every
// inc()/observe(), which cost the per-request path several microseconds. Here a series (one
// fixed label set) is resolved once into a "cell" and then updated with plain arithmetic; the
// prom-client metric reads the cells when Prometheus scrapes, so the exposition text (names,
// HELP/TYPE, label order, cumulative buckets) is the one prom-client writes.

import {
  Counter,
  Histogram,
  type CounterConfiguration,
  type HistogramConfiguration,
  type LabelValues,
  type MetricObjectWithValues,
  type MetricValueWithName,
} from 'prom-client';

type Labels<T extends string> = LabelValues<T>;

/** A counter series: add to `pending`; the scrape moves it into the prom-client counter. */
export interface CounterCell {
  pending: number;
}

/** A histogram series: `observe(cell, value)` records one value. */
export interface HistogramCell {
  /** Per bucket (not cumulative); the last slot counts values above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

const keyOf = (labels: Record<string, string | number | undefined>): string => Object.values(labels).join('\u0000');

export class CellCounter<T extends string> {
  readonly metric: Counter<T>;
  readonly #cells = new Map<string, { labels: Labels<T>; cell: CounterCell }>();

  constructor(config: CounterConfiguration<T>) {
    const cells = this.#cells;
    this.metric = new Counter<T>({
      ...config,
      collect() {
        for (const { labels, cell } of cells.values()) {
          if (cell.pending === 0) continue;
          this.inc(labels, cell.pending);
          cell.pending = 0;
        }
      },
    });
  }

  /** The cell of one label set (the same cell for equal label values). */
  cell(labels: Labels<T>): CounterCell {
    const key = keyOf(labels);
    let entry = this.#cells.get(key);
    if (!entry) {
      entry = { labels, cell: { pending: 0 } };
      this.#cells.set(key, entry);
    }
    return entry.cell;
  }
}

export class CellHistogram<T extends string> {
  readonly metric: Histogram<T>;
  readonly #name: string;
  readonly #bounds: number[];
  readonly #cells = new Map<string, { labels: Labels<T>; cell: HistogramCell }>();

  constructor(config: HistogramConfiguration<T> & { buckets: number[] }) {
    this.#name = config.name;
    this.#bounds = [...config.buckets].sort((a, b) => a - b);
    this.metric = new Histogram<T>(config);
    // prom-client's own reading (name, help, type) with the cells as its values. The registry
    // reads a histogram through getForPromString() when present, else get().
    type Reading = MetricObjectWithValues<MetricValueWithName<T>>;
    const metric = this.metric as Histogram<T> & { getForPromString(): Promise<Reading> };
    const own = metric.getForPromString.bind(metric);
    const read = async (): Promise<Reading> => ({ ...(await own()), values: this.#values() });
    metric.get = read;
    metric.getForPromString = read;
    this.metric.reset = () => {
      for (const { cell } of this.#cells.values()) {
        cell.counts.fill(0);
        cell.sum = 0;
        cell.count = 0;
      }
    };
  }

  cell(labels: Labels<T>): HistogramCell {
    const key = keyOf(labels);
    let entry = this.#cells.get(key);
    if (!entry) {
      entry = { labels, cell: { counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 } };
      this.#cells.set(key, entry);
    }
    return entry.cell;
  }

  observe(cell: HistogramCell, value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    cell.counts[i]!++;
    cell.sum += value;
    cell.count++;
  }

  #values(): Array<MetricValueWithName<T>> {
    const name = this.#name;
    const out: Array<MetricValueWithName<T>> = [];
    for (const { labels, cell } of this.#cells.values()) {
      if (cell.count === 0) continue;
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += cell.counts[i]!;
        out.push({ metricName: `${name}_bucket`, labels: { le: this.#bounds[i]!, ...labels } as Labels<T>, value: cumulative });
      }
      out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', ...labels } as Labels<T>, value: cell.count });
      out.push({ metricName: `${name}_sum`, labels, value: cell.sum });
      out.push({ metricName: `${name}_count`, labels, value: cell.count });
    }
    return out;
  }
}
