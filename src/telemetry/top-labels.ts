// A bounded label set for values that come from requests (client keys, model names): the `size`
// values with the most use so far get their own label, every other value is counted as "other".
// When a value overtakes the smallest labelled one, that one is demoted (its series removed; its
// later use counts as "other"). Use is tracked for at most `track` values; past that, values
// without a label are forgotten, so memory stays bounded whatever clients send.

export const OTHER_LABEL = 'other';

export class TopLabels {
  readonly #use = new Map<string, number>();
  readonly #labelled = new Set<string>();

  constructor(
    readonly size: number,
    readonly onDemote: (value: string) => void = () => {},
    readonly track = 10_000,
  ) {}

  /** The label for `value` after adding `amount` of use to it. */
  label(value: string, amount: number): string {
    if (this.#use.size >= this.track && !this.#use.has(value)) {
      for (const key of this.#use.keys()) if (!this.#labelled.has(key)) this.#use.delete(key);
    }
    const use = (this.#use.get(value) ?? 0) + amount;
    this.#use.set(value, use);
    if (this.#labelled.has(value)) return value;
    if (this.#labelled.size < this.size) {
      this.#labelled.add(value);
      return value;
    }
    let smallest: string | undefined;
    let least = Infinity;
    for (const labelled of this.#labelled) {
      const u = this.#use.get(labelled) ?? 0;
      if (u < least) {
        least = u;
        smallest = labelled;
      }
    }
    if (smallest === undefined || use <= least) return OTHER_LABEL;
    this.#labelled.delete(smallest);
    this.onDemote(smallest);
    this.#labelled.add(value);
    return value;
  }

  get labelled(): ReadonlySet<string> {
    return this.#labelled;
  }
}
