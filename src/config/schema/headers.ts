import { z } from 'zod';
import { secret } from './secret.js';

// Request headers the gateway sets or removes. Values often carry credentials (${ENV} keys), so
// no message here ever quotes a value.

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Headers the gateway owns: framing and hop-by-hop ones cannot be set by config. */
const RESERVED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
  'expect',
]);

export const headerName = z
  .string()
  .regex(TOKEN, { message: "not a valid header name (letters, digits and !#$%&'*+.^_`|~-)" })
  .transform((name) => name.toLowerCase());

// What HTTP allows in a field value (RFC 9110 §5.5; undici refuses anything else at send time).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const headerValue = z.string().refine((value) => FIELD_VALUE.test(value), {
  message: 'header value contains a line break, control or non-Latin-1 character (value not shown)',
});

export const setHeadersSchema = z
  .record(z.string(), secret(headerValue))
  .superRefine((headers, ctx) => {
    for (const name of Object.keys(headers)) {
      if (!TOKEN.test(name))
        ctx.addIssue({ code: 'custom', path: [name], message: "not a valid header name (letters, digits and !#$%&'*+.^_`|~-)" });
      else if (RESERVED.has(name.toLowerCase()))
        ctx.addIssue({ code: 'custom', path: [name], message: 'this header is managed by the gateway (use hostHeader for Host)' });
    }
  })
  .meta({
    description:
      "Request headers set on every request sent to the backend (replacing the client's). Values may use ${ENV}; they are never logged or shown.",
  });

export const removeHeadersSchema = z
  .array(headerName)
  .meta({ description: "Request header names removed before forwarding (e.g. the client's own api-key or authorization)." });
