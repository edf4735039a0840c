// Child process: an OTLP/HTTP receiver that accepts every export and drops it — the "no-op"
// trace backend of the telemetry scenario (spillway still builds, batches and sends its spans).
import { createServer } from 'node:http';
import { lifecycle, portOf, reportError } from './common.ts';

let requests = 0;
let bytes = 0;
const server = createServer((req, res) => {
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  req.on('end', () => {
    requests++;
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf', 'content-length': 0 });
    res.end();
  });
});

lifecycle(() => new Promise<void>((resolve) => server.close(() => resolve())));
process.on('message', (msg: { type?: string } | undefined) => {
  if (msg?.type === 'stats') process.send!({ type: 'stats', requests, bytes });
});
server.on('error', reportError);
server.listen(0, '127.0.0.1', () => {
  const port = portOf(server.address());
  process.send!({ type: 'ready', url: `http://127.0.0.1:${port}`, port });
});
