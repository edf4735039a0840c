// Reads the client's request body for forwarding. Bodies up to the replay limit are kept whole
// (so a throttled attempt can be replayed to the next backend); larger ones are streamed to one
// backend only. Every byte counts against the request body limit, with or without a
// Content-Length (chunked HTTP/1, HTTP/2 DATA frames), and a client that pauses too long
// (requestBodyIdle) or takes too long overall (requestBody) is cut with a 408.

import type { IncomingMessage } from 'node:http';
import type { ClientTimeout } from '../core/events.js';

export type BodyTimeout = Extract<ClientTimeout, 'requestBodyIdle' | 'requestBody'>;

export type ClientBody =
  | { kind: 'none' }
  | { kind: 'buffer'; body: Buffer }
  | { kind: 'stream'; body: AsyncIterable<Buffer>; length: number | undefined }
  | { kind: 'too-large'; limit: number }
  | { kind: 'timeout'; timeout: BodyTimeout; ms: number }
  | { kind: 'aborted' };

export interface BodyLimits {
  /** Bodies up to this size are kept whole for replay. */
  replayLimit: number;
  /** limits.maxRequestBody */
  maxBody: number;
  /** listen.timeouts.requestBodyIdle (ms) */
  idleMs: number;
  /** listen.timeouts.requestBody (ms), counted from the start of the read */
  totalMs: number;
  /** Told once when a timeout cuts the body (metrics). */
  onTimeout?: (timeout: BodyTimeout) => void;
  /** Told when a limit cut a streamed body: the caller ends the request once it is answered. */
  onCut?: () => void;
}

export class BodyTooLargeError extends Error {
  readonly code = 'SPILLWAY_BODY_TOO_LARGE';
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`);
  }
}

export class BodyTimeoutError extends Error {
  readonly code = 'SPILLWAY_BODY_TIMEOUT';
  constructor(
    readonly timeout: BodyTimeout,
    readonly ms: number,
  ) {
    super(timeout === 'requestBodyIdle' ? `no request body data for ${ms} ms` : `the request body took longer than ${ms} ms`);
  }
}

const NONE: ClientBody = { kind: 'none' };

export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  // HTTP/2 has no Transfer-Encoding: a request has a body unless its HEADERS frame ended the stream.
  if (req.httpVersionMajor === 2) return !(req as IncomingMessage & { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders;
  return req.headers['transfer-encoding'] !== undefined;
}

/** The declared Content-Length, or undefined (chunked, HTTP/2 without the header). */
export function declaredLength(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length'];
  return value === undefined ? undefined : Number(value);
}

export function readClientBody(req: IncomingMessage, limits: BodyLimits): Promise<ClientBody> | ClientBody {
  if (!hasBody(req)) return NONE;
  const { replayLimit, maxBody } = limits;
  const declared = declaredLength(req);
  if (declared !== undefined && declared > maxBody) return { kind: 'too-large', limit: maxBody };
  const deadline = Date.now() + limits.totalMs;
  if (declared !== undefined && declared > replayLimit) {
    return { kind: 'stream', body: limitStream(req, [], 0, limits, deadline), length: declared };
  }
  return new Promise<ClientBody>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let idle: NodeJS.Timeout | undefined;
    const total = setTimeout(() => timedOut('requestBody', limits.totalMs), limits.totalMs);
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => timedOut('requestBodyIdle', limits.idleMs), limits.idleMs);
    };
    const cleanup = () => {
      clearTimeout(idle);
      clearTimeout(total);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('aborted', onAbort);
    };
    const timedOut = (timeout: BodyTimeout, ms: number) => {
      cleanup();
      req.pause();
      limits.onTimeout?.(timeout);
      resolve({ kind: 'timeout', timeout, ms });
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBody) {
        cleanup();
        req.pause();
        resolve({ kind: 'too-large', limit: maxBody });
        return;
      }
      chunks.push(chunk);
      if (size > replayLimit) {
        // Past the replay limit: stop keeping a copy, stream the rest once.
        cleanup();
        req.pause();
        resolve({ kind: 'stream', body: limitStream(req, chunks, size, limits, deadline), length: declared });
        return;
      }
      armIdle();
    };
    const onEnd = () => {
      cleanup();
      resolve({ kind: 'buffer', body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
    };
    const onAbort = () => {
      cleanup();
      resolve({ kind: 'aborted' });
    };
    armIdle();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('aborted', onAbort);
  });
}

/**
 * The rest of the body, pulled by the backend request. The idle clock runs only while we wait
 * for the client, never while the backend is slow to take what we have.
 */
async function* limitStream(
  req: IncomingMessage,
  head: Buffer[],
  headSize: number,
  limits: BodyLimits,
  deadline: number,
): AsyncGenerator<Buffer> {
  for (const chunk of head) yield chunk;
  let size = headSize;
  // Not destroyed when we stop early: a limit is answered (413, 408) on the open connection first.
  const chunks = req.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
  try {
    for (;;) {
      const next = await nextWithin(chunks, limits, deadline);
      if (next.done) return;
      size += next.value.length;
      if (size > limits.maxBody) throw new BodyTooLargeError(limits.maxBody);
      yield next.value;
    }
  } catch (error) {
    if (error instanceof BodyTooLargeError || error instanceof BodyTimeoutError) limits.onCut?.();
    throw error;
  } finally {
    void chunks.return?.();
  }
}

function nextWithin(chunks: AsyncIterator<Buffer>, limits: BodyLimits, deadline: number): Promise<IteratorResult<Buffer>> {
  const left = deadline - Date.now();
  const [timeout, ms] = left < limits.idleMs ? (['requestBody', limits.totalMs] as const) : (['requestBodyIdle', limits.idleMs] as const);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => {
        limits.onTimeout?.(timeout);
        reject(new BodyTimeoutError(timeout, ms));
      },
      Math.max(0, Math.min(left, limits.idleMs)),
    );
  });
  return Promise.race([chunks.next(), expired]).finally(() => clearTimeout(timer));
}
