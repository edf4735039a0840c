// Child process: the minimal origin. A plain node:http server answering every request with a small
// JSON body, keep-alive. IPC: { type: 'ready', url, port }; answers { type: 'stats' } with its request count.
import { createServer } from 'node:http';
import { lifecycle, portOf, reportError } from './common.ts';

const BODY = Buffer.from(JSON.stringify({ ok: true, service: 'origin', message: 'hello from the bench origin' }));
const HEADERS = { 'content-type': 'application/json', 'content-length': BODY.length };

let requests = 0;
const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000 }, (req, res) => {
  requests++;
  const reply = (): void => {
    res.writeHead(200, HEADERS);
    res.end(BODY);
  };
  if (req.complete) reply();
  else {
    req.on('end', reply);
    req.on('error', () => res.destroy());
    req.resume();
  }
});
server.maxRequestsPerSocket = 0;

lifecycle(
  () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
);
process.on('message', (msg: { type?: string } | undefined) => {
  if (msg?.type === 'stats') process.send!({ type: 'stats', requests });
});
server.on('error', reportError);
server.listen(0, '127.0.0.1', () => {
  const port = portOf(server.address());
  process.send!({ type: 'ready', url: `http://127.0.0.1:${port}`, port });
});
