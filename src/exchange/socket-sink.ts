// A ResponseSink over a raw client socket: an upgrade request has no ServerResponse, so answers
// that are not "101 Switching Protocols" (problems, a backend's refusal) are written as plain
// HTTP/1.1 responses delimited by closing the connection.

import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProblemOptions, ResponseSink } from './sink.js';
import { PROBLEM_TYPES, problemBody, type ProblemCode } from '../core/problems.js';

const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

function head(status: number, headers: Record<string, string | number | string[] | undefined>): string {
  let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) text += `${name}: ${one}\r\n`;
  }
  return `${text}\r\n`;
}

export class SocketSink implements ResponseSink {
  #started = false;
  constructor(readonly socket: Duplex) {}

  get started(): boolean {
    return this.#started;
  }

  onGone(listener: () => void): void {
    this.socket.once('close', () => {
      if (!this.socket.writableFinished) listener();
    });
  }

  start(status: number, headers: IncomingHttpHeaders): void {
    this.#started = true;
    const kept: IncomingHttpHeaders = {};
    for (const name in headers) if (!FRAMING.has(name)) kept[name] = headers[name];
    this.socket.write(head(status, { ...kept, connection: 'close' }));
  }

  write(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  onDrain(listener: () => void): void {
    this.socket.once('drain', listener);
  }

  end(): void {
    this.socket.end();
  }

  problem(code: ProblemCode, detail: string, options: ProblemOptions = {}): void {
    if (this.#started || this.socket.destroyed) {
      this.socket.destroy();
      return;
    }
    this.#started = true;
    const body = JSON.stringify(problemBody(code, detail, options.extensions));
    this.socket.end(
      head(PROBLEM_TYPES[code].status, {
        'content-type': 'application/problem+json',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
        ...options.headers,
        connection: 'close',
      }) + body,
    );
  }

  abort(): void {
    this.socket.destroy();
  }
}
