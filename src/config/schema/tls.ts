import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { z } from 'zod';
import { INTERMEDIATE_CIPHERS } from './listen.js';

// PEM files are read when the config is checked, so a wrong path or a key that does not belong
// to its certificate is a config error with a line number, not a failure at the first request.

type Read = { text: string } | { error: string };

function readPem(file: string): Read {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : (error as Error).message;
    return { error: `cannot read "${file}": ${reason}` };
  }
}

/** Problems with a PEM certificate file (a bundle may hold several), or undefined. */
export function checkCertificateFile(file: string): string | undefined {
  const read = readPem(file);
  if ('error' in read) return read.error;
  if (!read.text.includes('-----BEGIN CERTIFICATE-----'))
    return `"${file}" holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`;
  try {
    new X509Certificate(read.text);
  } catch (error) {
    return `"${file}" is not a valid PEM certificate: ${(error as Error).message}`;
  }
  return undefined;
}

/** Problems with a PEM private key file (never quoting its content), or undefined. */
export function checkPrivateKeyFile(file: string): string | undefined {
  const read = readPem(file);
  if ('error' in read) return read.error;
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(read.text))
    return `"${file}" holds no PEM private key (expected -----BEGIN ... PRIVATE KEY-----)`;
  try {
    createPrivateKey(read.text);
  } catch {
    return `"${file}" is not a usable private key (encrypted keys are not supported)`;
  }
  return undefined;
}

const certificateFile = z
  .string()
  .min(1)
  .superRefine((file, ctx) => {
    const problem = checkCertificateFile(file);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const privateKeyFile = z
  .string()
  .min(1)
  .superRefine((file, ctx) => {
    const problem = checkPrivateKeyFile(file);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** How the gateway verifies a backend's certificate. Per upstream, overridden field by field per backend. */
export const upstreamTlsSchema = z.strictObject({
  ca: certificateFile
    .optional()
    .meta({ description: 'PEM file of the CA(s) trusted for the backend certificate, instead of the system CAs.' }),
  insecureSkipVerify: z
    .boolean()
    .optional()
    .meta({ description: 'Accept any backend certificate (default false). For testing only; logged as a warning at start.' }),
  servername: z
    .string()
    .min(1)
    .optional()
    .meta({ description: "SNI name sent and checked against the certificate. Default: the backend URL's host name." }),
});

/** OpenSSL refuses a list naming no cipher it knows: say so at load, not at listen. */
function checkCiphers(ciphers: string): string | undefined {
  try {
    createSecureContext({ ciphers });
    return undefined;
  } catch (error) {
    return `no usable cipher in "${ciphers}" (${(error as Error).message})`;
  }
}

/** TLS on the proxy listener. */
export const listenerTlsSchema = z
  .strictObject({
    cert: certificateFile.meta({ description: 'PEM certificate chain file (leaf first).' }),
    key: privateKeyFile.meta({ description: 'PEM private key file of the certificate.' }),
    minVersion: z
      .enum(['TLSv1.2', 'TLSv1.3'])
      .default('TLSv1.2')
      .meta({ description: 'Oldest TLS version a client may use (Mozilla "intermediate": TLSv1.2).' }),
    ciphers: z
      .string()
      .min(1)
      .max(4096)
      .default(INTERMEDIATE_CIPHERS)
      .meta({ description: 'OpenSSL cipher list. Default: Mozilla "intermediate" (forward secrecy, AEAD only).' }),
  })
  .superRefine((tls, ctx) => {
    const cipherProblem = checkCiphers(tls.ciphers);
    if (cipherProblem) ctx.addIssue({ code: 'custom', path: ['ciphers'], message: cipherProblem });
    if (checkCertificateFile(tls.cert) || checkPrivateKeyFile(tls.key)) return;
    try {
      const certificate = new X509Certificate(readFileSync(tls.cert, 'utf8'));
      if (!certificate.checkPrivateKey(createPrivateKey(readFileSync(tls.key, 'utf8')))) {
        ctx.addIssue({
          code: 'custom',
          path: ['key'],
          message: `the key in "${tls.key}" does not belong to the certificate in "${tls.cert}"`,
        });
      }
    } catch (error) {
      ctx.addIssue({ code: 'custom', path: ['key'], message: `cannot check the key against the certificate: ${(error as Error).message}` });
    }
  });

export type UpstreamTlsConfig = z.output<typeof upstreamTlsSchema>;
export type ListenerTlsConfig = z.output<typeof listenerTlsSchema>;
