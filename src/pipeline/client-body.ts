// Reads the client's request body for forwarding. Bodies up to the replay limit are kept whole
// (so a throttled attempt can be replayed to the next backend); larger ones are streamed to one
// backend only, still bounded by the request body limit.

import type { IncomingMessage } from 'node:http';

export type ClientBody =
  | { kind: 'none' }
  | { kind: 'buffer'; body: Buffer }
  | { kind: 'stream'; body: AsyncIterable<Buffer>; length: number | undefined }
  | { kind: 'too-large'; limit: number }
  | { kind: 'aborted' };

export class BodyTooLargeError extends Error {
  readonly code = 'SPILLWAY_BODY_TOO_LARGE';
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`);
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

export function readClientBody(req: IncomingMessage, replayLimit: number, maxBody: number): Promise<ClientBody> | ClientBody {
  if (!hasBody(req)) return NONE;
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  if (declared !== undefined && declared > maxBody) return { kind: 'too-large', limit: maxBody };
  if (declared !== undefined && declared > replayLimit) {
    return { kind: 'stream', body: limitStream(req, [], 0, maxBody), length: declared };
  }
  return new Promise<ClientBody>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('aborted', onAbort);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      if (size > replayLimit) {
        // Past the replay limit: stop keeping a copy, stream the rest once.
        cleanup();
        req.pause();
        if (size > maxBody) resolve({ kind: 'too-large', limit: maxBody });
        else resolve({ kind: 'stream', body: limitStream(req, chunks, size, maxBody), length: declared });
      }
    };
    const onEnd = () => {
      cleanup();
      resolve({ kind: 'buffer', body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
    };
    const onAbort = () => {
      cleanup();
      resolve({ kind: 'aborted' });
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('aborted', onAbort);
  });
}

async function* limitStream(req: IncomingMessage, head: Buffer[], headSize: number, maxBody: number): AsyncGenerator<Buffer> {
  for (const chunk of head) yield chunk;
  let size = headSize;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBody) throw new BodyTooLargeError(maxBody);
    yield chunk;
  }
}
