// A private redis-server for the ratelimit scenario: free port, no persistence, killed by pid.

import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { HOST } from './paths.ts';
import { sleep } from './load.ts';
import type { StopInfo } from '../../test/helpers/gateway-process.ts';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, HOST);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis(): Promise<{ url: string; pid: number; stop(): Promise<StopInfo> }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  child.once('error', () => undefined);
  for (let i = 0; i < 100 && !(await pong(port)); i++) await sleep(50);
  if (!(await pong(port))) {
    kill();
    throw new Error('redis-server did not start (is it installed?)');
  }
  return {
    url: `redis://${HOST}:${port}`,
    pid: child.pid!,
    stop: async () => {
      kill();
      return { code: 0, signal: null, forced: false };
    },
  };
}
