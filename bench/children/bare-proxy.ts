// Child process: the smallest Node reverse proxy worth comparing with — node:http server + one undici
// Pool (the project's undici) to the origin: copy method, path and headers up, status and headers
// down, pipe the body. No features (no routing, retries, metrics, timeouts of its own).
// Usage (forked by the bench, with the probe): bare-proxy.ts <upstream-url>
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import { lifecycle, portOf, reportError } from './common.ts';

// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded in either direction.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);

const endToEnd = (headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> => {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP.has(name)) out[name] = value;
  return out;
};

try {
  const upstream = process.argv[2];
  if (!upstream) throw new Error('usage: bare-proxy.ts <upstream-url>');
  const pool = new Pool(upstream, { keepAliveTimeout: 10_000 });
  const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000 }, (req, res) => {
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    pool
      .request({ method: req.method as 'GET', path: req.url ?? '/', headers: endToEnd(req.headers), body: hasBody ? req : null })
      .then(({ statusCode, headers, body }) => {
        res.writeHead(statusCode, endToEnd(headers));
        body.pipe(res);
        body.on('error', () => res.destroy());
      })
      .catch(() => {
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end();
      });
  });
  server.maxRequestsPerSocket = 0;
  lifecycle(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        void pool.close();
      }),
  );
  server.listen(0, '127.0.0.1', () => {
    const port = portOf(server.address());
    process.send!({ type: 'ready', url: `http://127.0.0.1:${port}`, port });
  });
} catch (err) {
  reportError(err);
}
