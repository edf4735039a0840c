// How request paths that backends read differently are matched or refused (docs/routing.md,
// "Paths"): ";" path parameters, case, and segments ending in "." or whitespace.

import { z } from 'zod';

export const pathsSchema = z
  .strictObject({
    semicolons: z.enum(['match-stripped', 'refuse', 'keep']).default('match-stripped').meta({
      description:
        'match-stripped: rules match the path without each segment\'s ";…" (as Tomcat, Jetty, Spring read it), the backend gets it as sent; refuse: 400; keep: ";" is an ordinary character.',
    }),
    caseInsensitive: z
      .boolean()
      .default(false)
      .meta({ description: 'Match path rules in any case (for backends that serve /ADMIN as /admin: Express by default, IIS).' }),
    trailingDotSpace: z.enum(['refuse', 'keep']).default('refuse').meta({
      description: 'refuse: a path segment ending in "." or whitespace (%20, %09) is answered 400 (IIS and Windows strip them).',
    }),
  })
  .meta({ description: 'Path spellings that backends read differently: matched as they will be served, or refused.' });

export type PathsConfig = z.output<typeof pathsSchema>;
