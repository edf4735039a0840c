// Child process: an origin that can be killed, stopped gracefully and started again on the same
// port (the backend-loss and chaos scenarios).
// Usage: restartable-origin.ts <port|0> <name> [ledger file] [latency ms]
// GET → small JSON. POST → records its Idempotency-Key (one line per applied POST) in the ledger
// file shared by every origin, then answers 201. SIGTERM = graceful: the listener closes, idle
// keep-alive sockets are ended, in-flight requests finish, then the process exits.
// IPC: { type: 'ready', url, port }; answers { type: 'stats' } with its request count.
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { lifecycle, portOf, reportError } from './common.ts';

const [portArg, name = 'origin', ledger, latencyArg] = process.argv.slice(2);
const latencyMs = Number(latencyArg ?? 0);
let requests = 0;

const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000 }, (req, res) => {
  requests++;
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('error', () => res.destroy());
  req.on('end', () => {
    const reply = (): void => {
      if (res.destroyed) return;
      if (req.method === 'POST') {
        const key = req.headers['idempotency-key'];
        if (ledger && typeof key === 'string') appendFileSync(ledger, `${key} ${name}\n`);
        const body = JSON.stringify({ ok: true, applied: key, by: name });
        res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      const body = JSON.stringify({ ok: true, backend: name });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (latencyMs > 0) setTimeout(reply, latencyMs);
    else reply();
  });
});

lifecycle(
  () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setInterval(() => server.closeIdleConnections(), 5).unref();
    }),
);
process.on('message', (msg: { type?: string } | undefined) => {
  if (msg?.type === 'stats') process.send!({ type: 'stats', requests });
});
server.on('error', reportError);
server.listen(Number(portArg ?? 0), '127.0.0.1', () => {
  const port = portOf(server.address());
  process.send!({ type: 'ready', url: `http://127.0.0.1:${port}`, port });
});
