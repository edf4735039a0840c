// A backend may send interim 1xx answers (100 Continue, 103 Early Hints) before its final
// answer; RFC 9110 §15.2 says a client must parse and skip them. A raw-socket backend sends
// exactly those bytes; the client must get the final answer, not a 502.

import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';

let gateway: TestGateway | undefined;
let server: Server | undefined;
const sockets = new Set<Socket>();
afterEach(async () => {
  await gateway?.close();
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  gateway = server = undefined;
});

/** A backend that answers each request head with `reply` verbatim. */
async function rawBackend(reply: string): Promise<string> {
  server = createServer((socket) => {
    sockets.add(socket);
    let seen = '';
    socket.on('data', (chunk) => {
      seen += chunk.toString('latin1');
      const end = seen.indexOf('\r\n\r\n');
      if (end < 0) return;
      seen = seen.slice(end + 4);
      socket.write(reply);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}

async function through(reply: string): Promise<{ status: number; body: string; link: string | null }> {
  const url = await rawBackend(reply);
  gateway = await startGateway(`upstreams:
  app: { backends: [ { url: ${url} } ] }
routes: [ { match: { path: / }, upstream: app } ]
`);
  const res = await fetch(`${gateway.url}/x`);
  return { status: res.status, body: await res.text(), link: res.headers.get('link') };
}

const final = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok';

describe('interim 1xx answers from a backend', () => {
  it('100 Continue before the 200 reaches the client as the 200', async () => {
    expect(await through(`HTTP/1.1 100 Continue\r\n\r\n${final}`)).toMatchObject({ status: 200, body: 'ok' });
  });

  it('100 Continue and 103 Early Hints before the 200 reach the client as the 200', async () => {
    const reply = `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n${final}`;
    expect(await through(reply)).toMatchObject({ status: 200, body: 'ok' });
  });

  it('two 103s then a 200 sent in separate packets', async () => {
    const url = await rawBackend('');
    server!.removeAllListeners('connection');
    server!.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('data', async () => {
        for (const part of ['HTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\n\r\n', final]) {
          socket.write(part);
          await new Promise((resolve) => setTimeout(resolve, 30));
        }
      });
    });
    gateway = await startGateway(`upstreams:
  app: { backends: [ { url: ${url} } ] }
routes: [ { match: { path: / }, upstream: app } ]
`);
    const res = await fetch(`${gateway.url}/x`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });
});
