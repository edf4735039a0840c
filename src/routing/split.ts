// Weighted routing across upstreams. With stickyBy, a client key (a header, a cookie or the
// client address) picks its side by weighted rendezvous hashing (HRW): each side scores the key,
// the highest score wins. Changing a weight only moves the clients whose winner changes — about
// the share of traffic that moved, never a reshuffle of everyone.

import type { RequestView } from './request-view.js';

export interface SplitChoice<U> {
  readonly target: U;
  readonly name: string;
  readonly weight: number;
  readonly seed: number;
}

export type StickyKey = (request: RequestView) => string | undefined;

export interface CompiledSplit<U> {
  readonly choices: readonly SplitChoice<U>[];
  readonly totalWeight: number;
  readonly stickyBy: string | undefined;
  readonly stickyKey: StickyKey | undefined;
}

/** 32-bit FNV-1a of `text` starting from `seed`, finished with murmur3's fmix32 for avalanche. */
export function hash32(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function compileStickyKey(stickyBy: string | undefined): StickyKey | undefined {
  if (!stickyBy) return undefined;
  if (stickyBy === 'ip') return (request) => request.remoteAddress;
  const colon = stickyBy.indexOf(':');
  const kind = stickyBy.slice(0, colon);
  const name = stickyBy.slice(colon + 1);
  if (kind === 'header') {
    const lower = name.toLowerCase();
    return (request) => request.header(lower) || undefined;
  }
  return (request) => request.cookie(name) || undefined;
}

export function compileSplit<U>(
  entries: ReadonlyArray<{ target: U; name: string; weight: number }>,
  stickyBy: string | undefined,
): CompiledSplit<U> {
  const choices = entries.map((entry) => ({ ...entry, seed: hash32(entry.name) }));
  return { choices, totalWeight: choices.reduce((sum, c) => sum + c.weight, 0), stickyBy, stickyKey: compileStickyKey(stickyBy) };
}

/** Weighted rendezvous: score = -weight / ln(u), u uniform in (0,1) from hash(key, side). */
export function rendezvousPick<U>(choices: readonly SplitChoice<U>[], key: string): SplitChoice<U> {
  let best = choices[0]!;
  let bestScore = -Infinity;
  for (const choice of choices) {
    if (choice.weight <= 0) continue;
    const u = (hash32(key, choice.seed) + 0.5) / 4294967296;
    const score = -choice.weight / Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = choice;
    }
  }
  return best;
}

export function weightedPick<U>(split: CompiledSplit<U>, random: () => number): SplitChoice<U> {
  let point = random() * split.totalWeight;
  for (const choice of split.choices) {
    if (choice.weight <= 0) continue;
    point -= choice.weight;
    if (point < 0) return choice;
  }
  return split.choices.findLast((c) => c.weight > 0)!;
}

export function pickSplit<U>(split: CompiledSplit<U>, request: RequestView, random: () => number): SplitChoice<U> {
  const key = split.stickyKey?.(request);
  return key === undefined ? weightedPick(split, random) : rendezvousPick(split.choices, key);
}
