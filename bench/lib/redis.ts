// A private redis-server for the ratelimit scenario (free port, no persistence, killed by pid) and a
// restartable one with `appendonly yes` for the chaos scenario (keys survive its restarts).

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort, HOST } from './paths.ts';
import { sleep } from './load.ts';
import type { StopInfo } from '../../test/helpers/gateway-process.ts';

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

export interface RestartableRedis {
  url: string;
  port: number;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory (the append-only file is replayed). */
  restart(): Promise<void>;
  stop(): Promise<StopInfo>;
}

/** redis-server with `appendonly yes` and `appendfsync always` in a temp directory. */
export async function startPersistentRedis(): Promise<RestartableRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-redis-'));
  let child: ChildProcess | undefined;
  const alive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  const kill = async (): Promise<void> => {
    if (!alive()) return;
    const exited = once(child!, 'exit');
    child!.kill('SIGKILL');
    await exited;
  };
  const launch = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
      { stdio: 'ignore' },
    );
    child.once('error', () => undefined);
    for (let i = 0; i < 200 && !(await pong(port)); i++) await sleep(25);
    if (!(await pong(port))) throw new Error('redis-server did not start (is it installed?)');
  };
  process.once('exit', () => {
    if (alive()) child!.kill('SIGKILL');
  });
  await launch();
  return {
    url: `redis://${HOST}:${port}`,
    port,
    kill,
    restart: launch,
    stop: async () => {
      await kill();
      return { code: 0, signal: null, forced: false };
    },
  };
}
