// Merging part answers into one body. "object": {part: answer}; "deep": the answers' objects
// merged recursively in the order the parts are written (later parts win on conflicts).

import type { ProblemDetails } from '../../core/problems.js';
import type { CompiledPart, MergeMode } from './compile.js';

export interface PartOutcome<Upstream = unknown> {
  readonly part: CompiledPart<Upstream>;
  readonly value: unknown;
  readonly problem: ProblemDetails | undefined;
}

export function mergeAnswers(mode: MergeMode, outcomes: readonly PartOutcome<unknown>[]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const { part, value, problem } of outcomes) {
    if (mode === 'object') body[part.name] = problem ? null : value;
    else if (problem) continue;
    else if (isPlainObject(value)) deepMerge(body, value);
    else body[part.name] = value;
  }
  const errors = outcomes.filter((outcome) => outcome.problem);
  if (errors.length > 0) body._errors = Object.fromEntries(errors.map((outcome) => [outcome.part.name, outcome.problem]));
  return body;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const key of Object.keys(source)) {
    if (key === '__proto__') continue;
    const next = source[key];
    const current = target[key];
    if (isPlainObject(current) && isPlainObject(next)) deepMerge(current, next);
    else target[key] = isPlainObject(next) ? copyObject(next) : next;
  }
}

/** A copy, so later merges never write into a part's own answer object. */
function copyObject(source: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  deepMerge(copy, source);
  return copy;
}
