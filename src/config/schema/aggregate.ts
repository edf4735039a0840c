// The `aggregate` route action: one client request fans out to named parts (each an upstream
// call) and their JSON answers are merged into one response. See docs/aggregation.md.

import { z } from 'zod';
import { HTTP_METHODS } from './match.js';
import { duration, size } from './units.js';

/** Client headers a part receives unless it lists its own: harmless ones, tracing and auth. */
export const DEFAULT_PART_HEADERS = [
  'accept-language',
  'user-agent',
  'traceparent',
  'tracestate',
  'x-request-id',
  'authorization',
] as const;

const partName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, { message: 'part names use letters, digits, "_" and "-", and start with a letter or "_"' });

const headerList = z
  .array(
    z
      .string()
      .min(1)
      .toLowerCase()
      .regex(/^[!#$%&'*+.^_`|~0-9a-z-]+$/, { message: 'not a valid header name' }),
  )
  .meta({ description: `Client request headers passed to the part. Default: ${DEFAULT_PART_HEADERS.join(', ')}.` });

const template = z.string().startsWith('/', { message: 'a part path starts with "/"' }).meta({
  description:
    "Path and query sent to the upstream. {name} is filled (URL-encoded) from the route's :params, then the query; {part.field} from an earlier part's JSON (under its `then`).",
});

export interface AggregatePartInput {
  upstream: string;
  method?: string | undefined;
  path: string;
  headers?: string[] | undefined;
  timeout?: string | number | undefined;
  required?: boolean | undefined;
  select?: string | undefined;
  then?: Record<string, AggregatePartInput> | undefined;
}

export interface AggregatePartConfig {
  upstream: string;
  method: (typeof HTTP_METHODS)[number];
  path: string;
  headers?: string[] | undefined;
  timeout?: number | undefined;
  required: boolean;
  select?: string | undefined;
  then?: Record<string, AggregatePartConfig> | undefined;
}

export const aggregatePartSchema: z.ZodType<AggregatePartConfig, AggregatePartInput> = z.strictObject({
  upstream: z.string().min(1),
  method: z.string().toUpperCase().pipe(z.enum(HTTP_METHODS)).default('GET'),
  path: template,
  headers: headerList.optional(),
  timeout: duration.optional().meta({ description: "This part's own time limit (default: the aggregate timeout)." }),
  required: z
    .boolean()
    .default(false)
    .meta({ description: 'A required part that fails fails the whole request (502, or 504 on timeout); an optional one becomes null.' }),
  select: z
    .string()
    .regex(/^[^.]+(\.[^.]+)*$/, { message: 'select is a dotted field path like "data.items"' })
    .optional()
    .meta({ description: 'Dotted path of the field to keep from the JSON answer, e.g. "data.items" (array indexes allowed: "items.0").' }),
  // biome-ignore lint/suspicious/noThenProperty: `then` is the config's own word for dependent parts; the schema object is never awaited
  get then() {
    return z
      .record(partName, aggregatePartSchema)
      .optional()
      .meta({ description: 'Parts started as soon as this one has answered; their paths may use {thisPart.field}.' });
  },
});

export const aggregateSchema = z.strictObject({
  timeout: duration
    .default(5_000)
    .meta({ description: 'Overall deadline: past it, a missing required part means 504 and missing optional parts become null.' }),
  merge: z
    .enum(['object', 'deep'])
    .default('object')
    .meta({ description: '"object": {partName: answer, ...}; "deep": the parts\' JSON objects merged into one.' }),
  maxPartBody: size.default(1024 * 1024).meta({ description: 'A part answer larger than this is an error for that part.' }),
  headers: headerList.optional(),
  parts: z
    .record(partName, aggregatePartSchema)
    .refine((parts) => Object.keys(parts).length > 0, { message: 'an aggregate needs at least one part' }),
});

export type AggregateConfig = z.output<typeof aggregateSchema>;

type IssueSink = (path: Array<string | number>, message: string) => void;

/** Every `{name}` in a part path template. */
export function templateNames(path: string): string[] | { error: string } {
  const names: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const ch = path[i];
    if (ch === '}') return { error: 'unbalanced "}" in the path template' };
    if (ch !== '{') continue;
    const end = path.indexOf('}', i);
    if (end === -1) return { error: 'unclosed "{" in the path template' };
    const name = path.slice(i + 1, end);
    if (!/^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_$-]+)*$/.test(name)) return { error: `"{${name}}" is not a valid placeholder` };
    names.push(name);
    i = end;
  }
  return names;
}

/**
 * Cross-checks an aggregate against the rest of the config: known upstreams, part names unique
 * across `then` levels, and `{part.field}` references only to a part this one runs after.
 */
export function checkAggregate(
  aggregate: AggregateConfig,
  upstreams: readonly string[],
  base: Array<string | number>,
  report: IssueSink,
): void {
  const all = new Set<string>();
  const collect = (parts: Record<string, AggregatePartConfig>, path: Array<string | number>) => {
    for (const [name, part] of Object.entries(parts)) {
      if (all.has(name)) report([...path, name], `part name "${name}" is used twice in this aggregate`);
      if (name === '_errors') report([...path, name], '"_errors" is where the answer lists failed parts; choose another part name');
      all.add(name);
      if (part.then) collect(part.then, [...path, name, 'then']);
    }
  };
  collect(aggregate.parts, [...base, 'parts']);

  const visit = (parts: Record<string, AggregatePartConfig>, path: Array<string | number>, ancestors: readonly string[]) => {
    for (const [name, part] of Object.entries(parts)) {
      const at = [...path, name];
      if (!upstreams.includes(part.upstream)) {
        report([...at, 'upstream'], `unknown upstream "${part.upstream}" (defined: ${upstreams.join(', ') || 'none'})`);
      }
      const names = templateNames(part.path);
      if (!Array.isArray(names)) report([...at, 'path'], names.error);
      else {
        for (const placeholder of names) {
          const dot = placeholder.indexOf('.');
          if (dot === -1) continue;
          const source = placeholder.slice(0, dot);
          if (!all.has(source)) report([...at, 'path'], `"{${placeholder}}" names no part of this aggregate`);
          else if (!ancestors.includes(source))
            report(
              [...at, 'path'],
              `"{${placeholder}}" uses part "${source}", which this part does not run after (put it under ${source}.then)`,
            );
        }
      }
      if (part.then) visit(part.then, [...at, 'then'], [...ancestors, name]);
    }
  };
  visit(aggregate.parts, [...base, 'parts'], []);
}
