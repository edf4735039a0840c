// What an aggregate answers once every part is in: the merged JSON body (a part whose answer is
// nested too deeply to merge counts as failed), or the problem a required part's failure becomes.

import { problemBody, PROBLEM_TYPE_PREFIX, PROBLEM_TYPES, type ProblemCode, type ProblemDetails } from '../../core/problems.js';
import type { CompiledPart as CompiledPartOf, MergeMode } from '../../routing/aggregate/compile.js';
import { mergeAnswers, type PartOutcome as PartOutcomeOf } from '../../routing/aggregate/merge.js';
import type { CompiledUpstream } from '../../snapshot/snapshot.js';
import type { PartResult } from './part-sink.js';

type CompiledPart = CompiledPartOf<CompiledUpstream>;
type PartOutcome = PartOutcomeOf<CompiledUpstream>;
export type PartFailure = Extract<PartResult, { ok: false }>;

/** A problem the aggregate answers with (sendProblem's arguments). */
export interface AggregateProblem {
  code: ProblemCode;
  detail: string;
  extensions: Record<string, unknown>;
  headers?: Record<string, string> | undefined;
}

/** The body merged from every outcome and the parts that failed — or the problem when that breaks a required part. */
export type MergedAnswer = { ok: true; body: string; failed: string[] } | { ok: false; problem: AggregateProblem };

export function partFailure(code: ProblemCode, detail: string, part: CompiledPart): PartFailure {
  const problem: ProblemDetails = problemBody(code, detail, { part: part.name, upstream: part.upstream.name });
  return { ok: false, problem, timeout: code === 'aggregate-part-timeout' };
}

/** The problem the client gets when required part `part` failed with `failure`. */
export function requiredFailureProblem(part: CompiledPart, failure: PartFailure): AggregateProblem {
  const cause = failure.problem;
  const extensions = { part: part.name, upstream: part.upstream.name };
  const ownCode = cause.type.slice(PROBLEM_TYPE_PREFIX.length);
  if (failure.headers?.['retry-after'] !== undefined && ownCode in PROBLEM_TYPES) {
    // The part's pool cannot serve now (every backend cooling down, ...): pass the gateway's
    // own answer on, Retry-After included, so the client knows when to come back.
    const { type: _type, title: _title, status: _status, detail, ...members } = cause;
    return { code: ownCode as ProblemCode, detail: String(detail), extensions: { ...members, ...extensions }, headers: failure.headers };
  }
  if (cause.type === `${PROBLEM_TYPE_PREFIX}aggregate-input-missing`) {
    return { code: 'aggregate-input-missing', detail: String(cause.detail), extensions };
  }
  if (failure.timeout) {
    return {
      code: 'aggregate-timeout',
      detail: `required part "${part.name}" timed out: ${String(cause.detail)}`,
      extensions: { ...extensions, parts: [part.name], cause },
    };
  }
  return {
    code: 'aggregate-part-failed',
    detail: `required part "${part.name}" failed: ${String(cause.detail)}`,
    extensions: { ...extensions, cause },
  };
}

/** Merges every part's outcome (in the order of the parts) into the JSON body of the answer. */
export function mergeOutcomes(merge: MergeMode, outcomes: PartOutcome[]): MergedAnswer {
  let body: string;
  try {
    body = JSON.stringify(mergeAnswers(merge, outcomes));
  } catch {
    // An answer nested too deeply to merge or serialise (JSON.parse takes any depth; the
    // recursion afterwards does not): that part failed. Find it, then merge the rest.
    outcomes = outcomes.map((outcome) =>
      outcome.problem || serialisable(outcome.value)
        ? outcome
        : {
            part: outcome.part,
            value: null,
            problem: partFailure('aggregate-part-invalid-body', 'the answer is nested too deeply to merge', outcome.part).problem,
          },
    );
    const broken = outcomes.find((outcome) => outcome.problem && outcome.part.required);
    if (broken) {
      return {
        ok: false,
        problem: {
          code: 'aggregate-part-failed',
          detail: `required part "${broken.part.name}" failed: ${String(broken.problem!.detail)}`,
          extensions: { part: broken.part.name, upstream: broken.part.upstream.name, cause: broken.problem },
        },
      };
    }
    try {
      body = JSON.stringify(mergeAnswers(merge, outcomes));
    } catch {
      return {
        ok: false,
        problem: { code: 'aggregate-part-failed', detail: 'the answers are nested too deeply to merge', extensions: {} },
      };
    }
  }
  return { ok: true, body, failed: outcomes.filter((outcome) => outcome.problem).map((outcome) => outcome.part.name) };
}

function serialisable(value: unknown): boolean {
  try {
    JSON.stringify(value);
    return true;
  } catch {
    return false;
  }
}
