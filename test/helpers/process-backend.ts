// A backend in its own process, so a test can kill it for real (SIGKILL: the kernel closes its
// sockets, in-flight requests are cut) or stop it gracefully (listener closed, keep-alive sockets
// ended after their in-flight request), and start it again on the same port.

import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = `
const { createServer } = require('node:http');
const [port, name, delayMs] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
let served = 0;
const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const reply = () => {
      served++;
      const body = JSON.stringify({ backend: name, method: req.method, url: req.url, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (delayMs > 0) setTimeout(reply, delayMs); else reply();
  });
});
process.on('message', (msg) => {
  if (msg === 'served') process.send({ served });
  if (msg === 'close') {
    // Graceful: no new connections, idle keep-alive sockets ended, in-flight requests finish.
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setInterval(() => server.closeIdleConnections(), 5).unref();
  }
});
server.listen(port, '127.0.0.1', () => process.send({ port: server.address().port }));
`;

let scriptFile: string | undefined;
function script(): string {
  if (scriptFile === undefined) {
    scriptFile = join(tmpdir(), `spillway-process-backend-${process.pid}.cjs`);
    writeFileSync(scriptFile, SCRIPT);
  }
  return scriptFile;
}

export interface ProcessBackend {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  child: ChildProcess;
  /** Requests answered by the current process. */
  served(): Promise<number>;
  kill(): Promise<void>;
  /** Graceful stop: resolves when the process exited. */
  stop(): Promise<void>;
  /** Starts a new process on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

async function spawnOn(port: number, name: string, delayMs: number): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(script(), [String(port), name, String(delayMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { child, port: message.port };
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit').then(() => undefined);

export async function startProcessBackend(name: string, delayMs = 0): Promise<ProcessBackend> {
  const first = await spawnOn(0, name, delayMs);
  const backend: ProcessBackend = {
    name,
    port: first.port,
    url: `http://127.0.0.1:${first.port}`,
    child: first.child,
    async served() {
      const child = backend.child;
      if (child.exitCode !== null || child.signalCode !== null) return 0;
      child.send('served');
      const [message] = (await once(child, 'message')) as [{ served: number }];
      return message.served;
    },
    async kill() {
      backend.child.kill('SIGKILL');
      await exited(backend.child);
    },
    async stop() {
      backend.child.send('close');
      await exited(backend.child);
    },
    async restart() {
      backend.child = (await spawnOn(backend.port, name, delayMs)).child;
    },
    async close() {
      if (backend.child.exitCode === null && backend.child.signalCode === null) await backend.kill();
    },
  };
  return backend;
}
