// undici's HTTP/1 parser closes the connection ("bad response") on any 100 Continue it did not
// ask for, but RFC 9110 §15.2 says a client must parse and may ignore interim answers — and
// some backends send 100 before every final answer. This drops interim 100 blocks at the start
// of each response, before the parser sees them. Other 1xx (103 Early Hints) reach undici,
// which already skips them.
//
// A response starts after a request head is written (undici writes each head as one latin1
// string "METHOD target HTTP/1.1\r\n…" and, without pipelining, only once the previous response
// is complete). From then until the first byte of a non-100 status line, incoming bytes are
// checked; the rest of the time a read costs one branch.

import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { buildConnector } from 'undici';

type Connector = ReturnType<typeof buildConnector>;

const REQUEST_HEAD = /^[A-Z]+ \S+ HTTP\/1\.1\r\n/;
const CONTINUE_LINE = /^HTTP\/1\.[01] 100[ \r]/;
const HEAD_END = Buffer.from('\r\n\r\n');
/** Enough bytes to tell "HTTP/1.1 100 " from any other start. */
const STATUS_PREFIX = 13;

type Read = (size?: number) => Buffer | null;

/** The bytes left after the complete interim 100 blocks at the start; `incomplete` when more must arrive to tell. */
function stripContinues(data: Buffer): { rest: Buffer; incomplete: boolean } {
  for (;;) {
    if (data.length < STATUS_PREFIX) {
      const start = data.toString('latin1');
      return { rest: data, incomplete: 'HTTP/1.1 100 '.startsWith(start) || 'HTTP/1.0 100 '.startsWith(start) };
    }
    if (!CONTINUE_LINE.test(data.toString('latin1', 0, STATUS_PREFIX))) return { rest: data, incomplete: false };
    const end = data.indexOf(HEAD_END);
    if (end === -1) return { rest: data, incomplete: true };
    data = data.subarray(end + HEAD_END.length);
  }
}

export function dropInterimContinue(socket: Socket | Duplex): void {
  const read: Read = socket.read.bind(socket);
  const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
  let atResponseStart = false;
  let held: Buffer | undefined;

  socket.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string' && REQUEST_HEAD.test(chunk)) atResponseStart = true;
    return write(chunk, ...rest);
  }) as typeof socket.write;

  socket.read = ((size?: number) => {
    if (!atResponseStart) return read(size);
    for (;;) {
      const next = read();
      if (next === null) return null;
      const { rest, incomplete } = stripContinues(held === undefined ? next : Buffer.concat([held, next]));
      if (incomplete) {
        held = rest.length > 0 ? rest : undefined;
        continue;
      }
      held = undefined;
      atResponseStart = false;
      return rest;
    }
  }) as typeof socket.read;
}

/** Wraps an undici connector so every new backend connection drops interim 100 answers. */
export function withInterimContinueDropped(connect: Connector): Connector {
  return (options, callback) =>
    connect(options, (error, socket) => {
      if (socket) dropInterimContinue(socket);
      callback(error as Error, socket as never);
    });
}
