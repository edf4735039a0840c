// Compiles a route's `aggregate` config into the immutable form the request path runs. The
// upstream type is a parameter: the snapshot layer passes its compiled upstreams.

import type { AggregateConfig, AggregatePartConfig } from '../../config/schema/aggregate.js';
import { DEFAULT_PART_HEADERS } from '../../config/schema/aggregate.js';
import { compileTemplate, type PathTemplate } from './template.js';

export type MergeMode = 'object' | 'deep';

export interface CompiledPart<Upstream = unknown> {
  readonly name: string;
  readonly upstream: Upstream;
  readonly method: string;
  readonly path: PathTemplate;
  /** Lower-case names of the client headers passed on. */
  readonly headers: readonly string[];
  /** ms; undefined = only the aggregate deadline applies. */
  readonly timeout: number | undefined;
  readonly required: boolean;
  readonly select: readonly string[] | undefined;
  /** Parts started once this one has answered. */
  readonly then: readonly CompiledPart<Upstream>[];
}

export interface CompiledAggregate<Upstream = unknown> {
  readonly timeout: number;
  readonly merge: MergeMode;
  readonly maxPartBody: number;
  /** Parts started at once. */
  readonly roots: readonly CompiledPart<Upstream>[];
  /** Every part, `then` ones included, in the order written (the order of the merged body). */
  readonly parts: readonly CompiledPart<Upstream>[];
}

export function compileAggregate<Upstream>(
  config: AggregateConfig,
  upstreams: ReadonlyMap<string, Upstream>,
  routeParams: readonly string[],
): CompiledAggregate<Upstream> {
  const names = new Set<string>();
  const gather = (parts: Record<string, AggregatePartConfig>) => {
    for (const [name, part] of Object.entries(parts)) {
      names.add(name);
      if (part.then) gather(part.then);
    }
  };
  gather(config.parts);

  const all: CompiledPart<Upstream>[] = [];
  const build = (parts: Record<string, AggregatePartConfig>): CompiledPart<Upstream>[] =>
    Object.entries(parts).map(([name, part]) => {
      const then: CompiledPart<Upstream>[] = [];
      const compiled: CompiledPart<Upstream> = {
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
