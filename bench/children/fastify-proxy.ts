// Child process: the baseline reverse proxy of the passthrough scenario — fastify with
// @fastify/http-proxy in front of the origin, logger off, default options otherwise.
// Usage (forked by the bench): fastify-proxy.ts <upstream-url>
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';
import { lifecycle, portOf, reportError } from './common.ts';

try {
  const upstream = process.argv[2];
  if (!upstream) throw new Error('usage: fastify-proxy.ts <upstream-url>');
  const app = Fastify({ logger: false });
  await app.register(proxy, { upstream });
  lifecycle(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = portOf(app.server.address());
  process.send!({ type: 'ready', url: `http://127.0.0.1:${port}`, port });
} catch (err) {
  reportError(err);
}
