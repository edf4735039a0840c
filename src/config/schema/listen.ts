import { z } from 'zod';
import { duration, size } from './units.js';

// Client-side limits of the proxy listener: how long a client may take (distinct from the
// per-upstream timeouts, which are about backends) and what one HTTP/2 connection may ask for.

const HOUR = 3_600_000;

const clientDuration = (fallback: number, description: string) =>
  duration
    .refine((ms) => ms >= 1 && ms <= 24 * HOUR, { message: 'expected a duration between 1ms and 24h' })
    .default(fallback)
    .meta({ description });

export const listenTimeoutsSchema = z.strictObject({
  requestHeaders: clientDuration(
    10_000,
    'Time a client has to send the request line and headers (HTTP/1, WebSocket handshakes included). Answered 408.',
  ),
  requestBodyIdle: clientDuration(30_000, 'Longest pause between two pieces of a request body (HTTP/1 and HTTP/2). Answered 408.'),
  requestBody: clientDuration(300_000, 'Time a client has to send the whole request body once the headers are in. Answered 408.'),
  keepAliveIdle: clientDuration(
    75_000,
    'An idle client connection (no request in progress, no response streaming) is closed after this. Keep it above the idle timeout of a load balancer in front (often 60s).',
  ),
});

/** Mozilla's "intermediate" server profile (ssl-config.mozilla.org, v5.7): forward secrecy and AEAD only. */
export const INTERMEDIATE_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
].join(':');

export const http2LimitsSchema = z.strictObject({
  maxConcurrentStreams: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(100)
    .meta({ description: 'Streams one HTTP/2 connection may have open at once (advertised in SETTINGS; more are refused).' }),
  maxHeaderListSize: size
    .refine((bytes) => bytes >= 1024 && bytes <= 1024 * 1024, { message: 'expected a size between 1kb and 1mb' })
    .optional()
    .meta({ description: 'Largest header list of one HTTP/2 request (uncompressed). Default: limits.maxHeaderSize.' }),
  maxResetsPerSecond: z.number().int().min(1).max(100_000).default(100).meta({
    description:
      'Streams a client may cancel (RST_STREAM) per second on one connection before the connection is closed with GOAWAY (rapid-reset flood).',
  }),
});

export type ListenTimeouts = z.output<typeof listenTimeoutsSchema>;
export type Http2Limits = z.output<typeof http2LimitsSchema>;
