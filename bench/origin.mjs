// Child process: the minimal origin of the passthrough and connections scenarios.
// A plain node:http server answering every request with a small JSON body, keep-alive.
import { createServer } from 'node:http';
import { lifecycle, reportError } from './child-common.mjs';

const BODY = Buffer.from(JSON.stringify({ ok: true, service: 'origin', message: 'hello from the bench origin' }));
const HEADERS = { 'content-type': 'application/json', 'content-length': BODY.length };

let requests = 0;
const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000 }, (req, res) => {
  requests++;
  const reply = () => {
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

const closeServer = () =>
  new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
lifecycle(closeServer);

process.on('message', (msg) => {
  if (msg?.type === 'stats') process.send({ type: 'stats', requests });
});

server.on('error', reportError);
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.send({ type: 'ready', url: `http://127.0.0.1:${port}`, port });
});
