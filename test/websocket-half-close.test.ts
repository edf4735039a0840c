// WebSocket edge cases at the TCP level, with raw sockets on both sides: a client that leaves
// while the backend never closes its side (the tunnel must not linger half-closed), and a
// backend that answers the upgrade with something other than 101 (passed on with its body).

import { createServer as createHttpServer } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { waitUntil } from './helpers/wait.js';

let gateway: TestGateway | undefined;
let server: Server | undefined;
const sockets = new Set<Socket>();
afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await gateway?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  gateway = server = undefined;
});

/** A raw backend: `onHead` gets each connection once its request head has arrived. */
async function rawBackend(onHead: (socket: Socket) => void): Promise<string> {
  server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (!seen.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      onHead(socket);
    };
    socket.on('data', onData);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function gatewayTo(url: string): Promise<TestGateway> {
  gateway = await startGateway(`upstreams:
  rt: { backends: [ { url: ${url} } ] }
routes: [ { match: { path: / }, upstream: rt } ]
`);
  return gateway;
}

const upgradeRequest = (port: string) =>
  `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** Sends an upgrade request on a raw socket and collects everything the gateway sends back. */
function rawClient(gatewayUrl: string): { socket: Socket; received: () => string; ended: Promise<void> } {
  const port = new URL(gatewayUrl).port;
  const socket = connect({ host: '127.0.0.1', port: Number(port), allowHalfOpen: true });
  sockets.add(socket);
  let received = '';
  socket.on('data', (chunk) => (received += chunk.toString('latin1')));
  socket.on('error', () => {});
  // The gateway's FIN (or reset, when it had to destroy the connection) ends it.
  const ended = new Promise<void>((resolve) => {
    socket.once('end', () => resolve());
    socket.once('close', () => resolve());
  });
  socket.write(upgradeRequest(port));
  return { socket, received: () => received, ended };
}

const inFlight = () => gateway!.gateway.snapshot.upstreams.get('rt')!.backends[0]!.state.inFlight;

describe('a client leaves, the backend keeps its side open', () => {
  it('the gateway closes the backend side within ~2 s and inFlight returns to 0', async () => {
    const backendSockets: Socket[] = [];
    const backendClosed: Promise<void>[] = [];
    const url = await rawBackend((socket) => {
      backendSockets.push(socket);
      // The gateway's FIN (or reset) on the backend connection.
      backendClosed.push(
        new Promise((resolve) => {
          socket.once('end', () => resolve());
          socket.once('close', () => resolve());
        }),
      );
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
      );
      // Never ends or closes its side: a backend that ignores the client's FIN.
      socket.resume();
    });
    await gatewayTo(url);
    const clients = Array.from({ length: 20 }, () => rawClient(gateway!.url));
    await waitUntil(() => clients.every((c) => c.received().includes('101 Switching')), { timeout: 5_000 });
    expect(inFlight()).toBe(20);

    const left = performance.now();
    for (const client of clients) client.socket.end(); // FIN, and nothing else
    await Promise.all(clients.map((c) => c.ended)); // the gateway closes its client side too
    await Promise.all(backendClosed); // ... and the backend's, although the backend never did
    const ms = performance.now() - left;
    expect(ms).toBeLessThan(4_000);
    await waitUntil(() => inFlight() === 0, { timeout: 2_000 });
    const view = (await (await fetch(`${gateway!.adminUrl}/admin/upstreams`)).json()) as {
      upstreams: { rt: { backends: Array<{ inFlight: number }> } };
    };
    expect(view.upstreams.rt.backends[0]!.inFlight).toBe(0);
  });

  it('a backend that answers the FIN with its own closes the tunnel at once', async () => {
    const url = await rawBackend((socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      socket.on('end', () => socket.end());
      socket.resume();
    });
    await gatewayTo(url);
    const client = rawClient(gateway!.url);
    await waitUntil(() => client.received().includes('101 Switching'), { timeout: 5_000 });
    const left = performance.now();
    client.socket.end();
    await client.ended;
    await waitUntil(() => inFlight() === 0, { timeout: 2_000 });
    expect(performance.now() - left).toBeLessThan(1_000);
  });
});

describe('a backend refuses the upgrade', () => {
  it('a 200 with a body reaches the client unchanged, body included', async () => {
    const url = await rawBackend((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok'));
    await gatewayTo(url);
    const client = rawClient(gateway!.url);
    await client.ended;
    const text = client.received();
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toMatch(/content-type: text\/plain/i);
    expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe('ok');
  });

  it('a Node HTTP server without an upgrade handler: its 200 and body reach the client', async () => {
    const node = createHttpServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', () => resolve()));
    try {
      await gatewayTo(`http://127.0.0.1:${(node.address() as { port: number }).port}`);
      const client = rawClient(gateway!.url);
      await client.ended;
      const text = client.received();
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe('ok');
    } finally {
      node.closeAllConnections();
      node.close();
    }
  });

  it('a 403 with a chunked body reaches the client with its body', async () => {
    const url = await rawBackend((socket) =>
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnope\r\n0\r\n\r\n'),
    );
    await gatewayTo(url);
    const client = rawClient(gateway!.url);
    await client.ended;
    const text = client.received();
    expect(text).toMatch(/^HTTP\/1\.1 403 /);
    expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe('nope');
  });
});
