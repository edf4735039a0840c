import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; credentials never appear in them. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'spillway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['*.authorization', '*.cookie', '*["api-key"]', '*["x-api-key"]', '*.headers.authorization', '*.headers.cookie', '*.headers["api-key"]', '*.headers["x-api-key"]'],
        censor: '[redacted]',
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
