// What the listener answers when a client's bytes never become a request: the HTTP/1 parser
// refused them (400, 431) or the client was too slow to send them (408, listen.timeouts). The
// answer is a problem+json like every other gateway error, written straight to the socket.

import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { PROBLEM_TYPES, problemBody, type ProblemCode } from '../core/problems.js';
import type { ProxyObserver } from '../snapshot/observer.js';

type ClientError = Error & { code?: string };

/** A socket as node's HTTP server leaves it: the response in progress, if any. */
type ServerSocket = Duplex & { _httpMessage?: ServerResponse | null };

function rawProblem(code: ProblemCode, detail: string): string {
  const body = JSON.stringify(problemBody(code, detail));
  const { status } = PROBLEM_TYPES[code];
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
    'content-type: application/problem+json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'cache-control: no-store\r\n' +
    'connection: close\r\n\r\n' +
    body
  );
}

/** The server's `clientError` listener (fastify's `clientErrorHandler`). */
export function createClientErrorHandler(getObserver: () => ProxyObserver): (error: ClientError, socket: Duplex) => void {
  return (error, socket) => {
    // A connection the client reset: nothing to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) {
      socket.destroy();
      return;
    }
    const inFlight = (socket as ServerSocket)._httpMessage;
    let answer: string;
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      // Headers in (a response object exists): the body was too slow; otherwise the headers were.
      const timeout = inFlight ? 'requestBody' : 'requestHeaders';
      getObserver().clientTimeout(timeout);
      answer = rawProblem('request-timeout', `the request was not received in time (listen.timeouts.${timeout})`);
    } else if (error.code === 'HPE_HEADER_OVERFLOW') {
      getObserver().clientProtocolError('headers-too-large');
      answer = rawProblem('headers-too-large', 'the request headers exceed limits.maxHeaderSize');
    } else {
      getObserver().clientProtocolError('bad-request');
      answer = rawProblem('bad-request', `the request could not be parsed as HTTP/1.1 (${error.code ?? error.message})`);
    }
    // Only when no byte of a response went out: a half-sent answer cannot become an error.
    if (socket.writable && !inFlight?.headersSent) socket.write(answer);
    socket.destroy();
  };
}
