// A route's shared HTTP cache (docs/caching.md): where entries live, how big they may be, and
// what the key holds beyond method, host, normalised path + query and the answer's Vary.

import { z } from 'zod';
import { duration, size } from './units.js';

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: 'not a valid header name' })
  .transform((name) => name.toLowerCase());

/** One thing the key holds beyond the defaults: `body` (a hash of the normalised JSON body) or a request header. */
const keyPart = z.union([z.literal('body'), headerName]);

const DAY = 24 * 60 * 60 * 1000;

export const cacheSchema = z
  .strictObject({
    store: z
      .enum(['memory', 'redis'])
      .default('memory')
      .meta({ description: '"memory": an LRU per route in this process; "redis": the root `redis`, shared by every replica.' }),
    maxBody: size
      .pipe(
        z
          .number()
          .min(1)
          .max(64 * 1024 * 1024),
      )
      .default(1024 * 1024)
      .meta({ description: 'Answers with a larger body are passed through and not stored. Default 1mb, at most 64mb.' }),
    maxSize: size
      .pipe(
        z
          .number()
          .min(1024)
          .max(64 * 1024 * 1024 * 1024),
      )
      .default(256 * 1024 * 1024)
      .meta({ description: 'memory store: bytes the route keeps at most (least recently used go first). Default 256mb.' }),
    defaultTtl: duration
      .pipe(
        z
          .number()
          .min(1)
          .max(365 * DAY),
      )
      .optional()
      .meta({
        description:
          'Freshness for answers that carry none (no max-age, s-maxage, Expires). Absent: such answers are not reused unrevalidated.',
      }),
    staleIfError: duration
      .pipe(
        z
          .number()
          .min(0)
          .max(365 * DAY),
      )
      .optional()
      .meta({
        description: 'How long past freshness a stored answer may stand in when the backends fail, throttle or are open (e.g. "5m").',
      }),
    keyBy: z
      .union([keyPart, z.array(keyPart).max(16)])
      .transform((value) => (Array.isArray(value) ? value : [value]))
      .optional()
      .meta({
        description: '`body` (POST answers keyed by a hash of the normalised JSON body) and/or request header names added to the key.',
      }),
    deterministicHeader: headerName.optional().meta({
      description: 'With keyBy: body, a request carrying this header (any value but "false"/"0") is cached even without temperature 0.',
    }),
    lockTimeout: duration.pipe(z.number().min(0).max(120_000)).default(5_000).meta({
      description: 'Identical misses wait this long for the one request in flight, then go to the backend on their own. Default 5s.',
    }),
  })
  .superRefine((cache, ctx) => {
    if (cache.deterministicHeader !== undefined && !cache.keyBy?.includes('body'))
      ctx.addIssue({ code: 'custom', path: ['deterministicHeader'], message: 'deterministicHeader applies to keyBy: body' });
  })
  .meta({ description: 'Shared HTTP cache for this route (RFC 9111; docs/caching.md). Off unless written.' });

export type CacheConfig = z.output<typeof cacheSchema>;
