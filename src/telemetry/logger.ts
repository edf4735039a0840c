import { pino, type Logger } from 'pino';
import { ALWAYS_REDACTED, CENSOR, redactPaths, type SecretScrubber } from './redact.js';

export type { Logger };

export interface LoggerRedaction {
  /** Header names to redact besides the built-in ones (log.redact). */
  headers?: readonly string[];
  /** Replaces configured secret values in every line. */
  scrubber?: SecretScrubber;
}

/** JSON logs on stdout; credentials never appear in them. */
export function createLogger(level: string, destination?: NodeJS.WritableStream, redaction: LoggerRedaction = {}): Logger {
  const scrubber = redaction.scrubber;
  return pino(
    {
      level,
      base: { service: 'spillway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: redactPaths([...ALWAYS_REDACTED, ...(redaction.headers ?? [])]),
        censor: CENSOR,
      },
      ...(scrubber ? { hooks: { streamWrite: (line: string) => scrubber.scrub(line) } } : {}),
    },
    destination as pino.DestinationStream | undefined,
  );
}
