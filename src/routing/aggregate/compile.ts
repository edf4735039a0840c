// Compiles a route's `aggregate` config into the immutable form the request path runs.

import type { AggregateConfig, AggregatePartConfig } from '../../config/schema/aggregate.js';
import { DEFAULT_PART_HEADERS } from '../../config/schema/aggregate.js';
import type { CompiledUpstream } from '../../snapshot/snapshot.js';
import { compileTemplate, type PathTemplate } from './template.js';

export type MergeMode = 'object' | 'deep';

export interface CompiledPart {
  readonly name: string;
  readonly upstream: CompiledUpstream;
  readonly method: string;
  readonly path: PathTemplate;
  /** Lower-case names of the client headers passed on. */
  readonly headers: readonly string[];
  /** ms; undefined = only the aggregate deadline applies. */
  readonly timeout: number | undefined;
  readonly required: boolean;
  readonly select: readonly string[] | undefined;
  /** Parts started once this one has answered. */
  readonly then: readonly CompiledPart[];
}

export interface CompiledAggregate {
  readonly timeout: number;
  readonly merge: MergeMode;
  readonly maxPartBody: number;
  /** Parts started at once. */
  readonly roots: readonly CompiledPart[];
  /** Every part, `then` ones included, in the order written (the order of the merged body). */
  readonly parts: readonly CompiledPart[];
}

export function compileAggregate(config: AggregateConfig, upstreams: ReadonlyMap<string, CompiledUpstream>, routeParams: readonly string[]): CompiledAggregate {
  const names = new Set<string>();
  const gather = (parts: Record<string, AggregatePartConfig>) => {
    for (const [name, part] of Object.entries(parts)) {
      names.add(name);
      if (part.then) gather(part.then);
    }
  };
  gather(config.parts);

  const all: CompiledPart[] = [];
  const build = (parts: Record<string, AggregatePartConfig>): CompiledPart[] =>
    Object.entries(parts).map(([name, part]) => {
      const then: CompiledPart[] = [];
      const compiled: CompiledPart = {
        name,
        upstream: upstreams.get(part.upstream)!,
        method: part.method,
        path: compileTemplate(part.path, routeParams, names),
        headers: part.headers ?? config.headers ?? DEFAULT_PART_HEADERS,
        timeout: part.timeout,
        required: part.required,
        select: part.select?.split('.'),
        then,
      };
      all.push(compiled);
      if (part.then) then.push(...build(part.then));
      return compiled;
    });
  const roots = build(config.parts);
  return { timeout: config.timeout, merge: config.merge, maxPartBody: config.maxPartBody, roots, parts: all };
}
