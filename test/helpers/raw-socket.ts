// A raw TCP client for listener tests: send exact bytes (slowly if asked) and see what comes back
// and when the gateway closes the connection.

import { connect, type Socket } from 'node:net';

export interface RawConnection {
  socket: Socket;
  /** Everything received so far. */
  text(): string;
  /** Resolves with the ms from connect to the gateway closing the connection, and what it sent. */
  closed: Promise<{ afterMs: number; text: string }>;
  write(bytes: string): void;
}

export function rawConnect(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    const started = performance.now();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    const closed = new Promise<{ afterMs: number; text: string }>((done) => {
      socket.on('close', () => done({ afterMs: performance.now() - started, text: received }));
    });
    socket.on('error', () => undefined);
    socket.once('connect', () =>
      resolve({
        socket,
        text: () => received,
        closed,
        write: (bytes) => {
          if (!socket.destroyed) socket.write(bytes);
        },
      }),
    );
    socket.once('error', reject);
  });
}

/** Sends `bytes` and waits for the gateway to close the connection. */
export async function rawExchange(url: string, bytes: string): Promise<string> {
  const connection = await rawConnect(url);
  connection.write(bytes);
  return (await connection.closed).text;
}

/** Status, headers (lower-case names) and body of the first HTTP/1.1 response in `text`. */
export function parseRawResponse(text: string): { status: number; headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = text.slice(end + 4);
  const length = headers['content-length'];
  return { status: Number(statusLine?.split(' ')[1]), headers, body: length === undefined ? body : body.slice(0, Number(length)) };
}
