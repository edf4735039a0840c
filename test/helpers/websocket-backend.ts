// WebSocket backends for tests: an echo server that records handshakes and close codes, and a
// backend that refuses every upgrade with a fixed status (e.g. 429 + retry hint).

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

export interface EchoBackend {
  url: string;
  port: number;
  server: Server;
  handshakes: IncomingMessage[];
  /** Close code and reason seen by the backend, per connection. */
  closes: Array<{ code: number; reason: string }>;
  sockets: WebSocket[];
  close(): Promise<void>;
}

export async function startEchoBackend(name = 'echo'): Promise<EchoBackend> {
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('websocket only');
  });
  const wss = new WebSocketServer({ server });
  const backend: EchoBackend = {
    url: '',
    port: 0,
    server,
    handshakes: [],
    closes: [],
    sockets: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  wss.on('connection', (socket, req) => {
    backend.handshakes.push(req);
    backend.sockets.push(socket);
    socket.on('message', (data, isBinary) => {
      const text = data.toString();
      if (!isBinary && text === 'who') socket.send(`${name} ${req.url}`);
      else socket.send(data, { binary: isBinary });
    });
    socket.on('close', (code, reason) => backend.closes.push({ code, reason: reason.toString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.port = (server.address() as AddressInfo).port;
  backend.url = `http://127.0.0.1:${backend.port}`;
  return backend;
}

export interface RefusingBackend {
  url: string;
  upgrades: number;
  close(): Promise<void>;
}

/** Answers every upgrade with `status` and `headers` (no 101). */
export async function startRefusingBackend(status: number, headers: Record<string, string> = {}): Promise<RefusingBackend> {
  const server = createServer((_req, res) => res.end());
  const backend: RefusingBackend = {
    url: '',
    upgrades: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('upgrade', (_req, socket) => {
    backend.upgrades++;
    const body = JSON.stringify({ error: { code: String(status) } });
    const lines = [`HTTP/1.1 ${status} Refused`, 'content-type: application/json', `content-length: ${body.length}`, 'connection: close'];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return backend;
}

/** Opens a client WebSocket and waits for it to be open (or for the refusal response). */
export function openClient(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, options);
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () =>
        reject(Object.assign(new Error(`refused with ${res.statusCode}`), { status: res.statusCode, headers: res.headers, body })),
      );
    });
    socket.once('error', reject);
  });
}

export function nextMessage(socket: WebSocket): Promise<string> {
  return new Promise((resolve) => socket.once('message', (data) => resolve(data.toString())));
}

export function closed(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (socket.readyState === WebSocket.CLOSED) resolve({ code: 1006, reason: '' });
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}
