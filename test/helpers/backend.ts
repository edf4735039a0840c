// Real backends on loopback for tests: each records what it received.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

export interface TestBackend {
  url: string;
  port: number;
  server: Server;
  received: ReceivedRequest[];
  close(): Promise<void>;
}

export type BackendHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>;

/** Starts a backend whose handler sees the whole request body. Default: 200 JSON naming the backend. */
export async function startBackend(handler?: BackendHandler, name = 'backend'): Promise<TestBackend> {
  const received: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() });
      if (handler) {
        Promise.resolve(handler(req, res, body)).catch((error: unknown) => {
          res.destroy(error as Error);
        });
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ backend: name, url: req.url, method: req.method }));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A backend that answers with fixed status and headers (e.g. 429 + retry hints). */
export function startStaticBackend(status: number, headers: Record<string, string> = {}, body = '', name = 'static'): Promise<TestBackend> {
  return startBackend((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body || JSON.stringify({ backend: name, status }));
  }, name);
}

export async function closeAll(...things: Array<{ close(): Promise<void> } | undefined>): Promise<void> {
  await Promise.all(things.map((thing) => thing?.close()));
}
