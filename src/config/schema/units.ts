import { z } from 'zod';
import { parseDuration, parseSize } from '../units.js';

/** Node timers fire at once when asked to wait longer than 2^31-1 ms (about 24.8 days). */
const MAX_DURATION_MS = 2 ** 31 - 1;

/** A duration written with a unit ("250ms", "10s", "5m", "1h2m3.5s"); parsed to milliseconds. */
export const duration = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const ms = typeof value === 'number' ? (value === 0 ? 0 : undefined) : parseDuration(value);
    if (ms !== undefined && ms > MAX_DURATION_MS) {
      ctx.addIssue({ code: 'custom', message: `duration ${JSON.stringify(value)} is too long: at most 24d (timers cannot wait longer)` });
      return z.NEVER;
    }
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration with a unit, like "250ms", "10s" or "5m", got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ description: 'Duration with a unit: ms, s, m, h, d (e.g. "250ms", "10s", "1h2m").' });

/** A size ("64kb", "1mb", binary multiples) or a number of bytes; parsed to bytes. */
export const size = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const bytes = typeof value === 'number' ? (Number.isInteger(value) && value >= 0 ? value : undefined) : parseSize(value);
    if (bytes === undefined || bytes > Number.MAX_SAFE_INTEGER) {
      ctx.addIssue({ code: 'custom', message: `expected a size like "64kb" or "1mb", got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return bytes;
  })
  .meta({ description: 'Size in bytes, or with a unit: b, kb, mb, gb (binary: 1mb = 1 MiB).' });

/** A percentage written "20%" or as a number 0..100; parsed to a fraction 0..1. */
export const percent = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const n = typeof value === 'number' ? value : /^\d+(\.\d+)?%$/.test(value.trim()) ? Number(value.trim().slice(0, -1)) : NaN;
    if (!(n >= 0 && n <= 100)) {
      ctx.addIssue({ code: 'custom', message: `expected a percentage between 0% and 100%, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return n / 100;
  })
  .meta({ description: 'Percentage, "20%" or 20.' });

export const httpUrl = z
  .string()
  .refine(
    (value) => {
      try {
        const url = new URL(value);
        return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && !url.search && !url.hash;
      } catch {
        return false;
      }
    },
    { message: 'expected an absolute http:// or https:// URL without query or fragment' },
  )
  .meta({ description: 'Absolute http(s) URL; a path is a prefix added to every request path.' });

export const port = z.number().int().min(0).max(65535);
