// Backends for fan-out tests: JSON (or anything) after a delay, and a count of the TCP
// connections still open on the backend side, to prove late answers are aborted, not leaked.

import type { Server } from 'node:http';
import { startBackend, type TestBackend } from './backend.js';

export interface DelayedReply {
  delayMs?: number;
  status?: number;
  /** Sent with JSON.stringify unless it is a string. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface CountingBackend extends TestBackend {
  /** Requests the backend is still working on over an open connection (neither answered nor aborted). */
  activeRequests(): number;
  /** Connections currently open on the backend side (a pool may keep idle ones for reuse). */
  openConnections(): number;
}

/** A backend answering each request with `reply(url)` (after its delay). */
export async function startJsonBackend(reply: (url: string) => DelayedReply, name = 'json'): Promise<CountingBackend> {
  let active = 0;
  const backend = await startBackend((req, res) => {
    active++;
    res.once('close', () => active--);
    const { delayMs = 0, status = 200, body = { backend: name, url: req.url }, headers = {} } = reply(req.url ?? '/');
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (delayMs > 0) {
      const timer = setTimeout(send, delayMs);
      res.once('close', () => clearTimeout(timer));
    } else send();
  }, name);
  return Object.assign(backend, { activeRequests: () => active, openConnections: countConnections(backend.server) });
}

function countConnections(server: Server): () => number {
  let open = 0;
  server.on('connection', (socket) => {
    open++;
    socket.once('close', () => open--);
  });
  return () => open;
}
