// HTTPS backends on loopback for TLS tests: each records requests, the SNI name it was asked
// for and how many TLS connections it accepted (to see keep-alive reuse).

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ReceivedRequest } from './backend.js';

export interface TlsBackend {
  url: string;
  port: number;
  server: Server;
  received: Array<ReceivedRequest & { servername: string | false | null | undefined }>;
  /** TLS connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

export type TlsHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

export async function startTlsBackend(pem: { cert: string; key: string }, handler?: TlsHandler, name = 'tls-backend'): Promise<TlsBackend> {
  const received: TlsBackend['received'] = [];
  const server = createServer({ cert: pem.cert, key: pem.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        at: Date.now(),
        servername: (req.socket as TLSSocket).servername,
      });
      if (handler) return handler(req, res, body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ backend: name, url: req.url }));
    });
  });
  server.keepAliveTimeout = 30_000;
  const backend: TlsBackend = {
    url: '',
    port: 0,
    server,
    received,
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('secureConnection', () => backend.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  backend.port = (server.address() as AddressInfo).port;
  backend.url = `https://127.0.0.1:${backend.port}`;
  return backend;
}
