// A private redis-server per test file, on a free port, so fault tests can kill and restart it;
// also Redis Sentinel processes (`startSentinel`) watching such a server.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitUntil } from './wait.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.setTimeout(500, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export interface TestRedis {
  port: number;
  url: string;
  /** Kills the server (SIGKILL): a crash, as clients see it. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: it keeps nothing on disk). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server on a free port; `extraArgs` are added to its command line (e.g. `--replicaof 127.0.0.1 <port>`). */
export async function startRedis(extraArgs: readonly string[] = []): Promise<TestRedis> {
  const port = await freePort();
  // its own dir: a replica writes the RDB of a full sync there, and redis-server loads dump.rdb from its dir at start
  const dir = await mkdtemp(join(tmpdir(), 'spillway-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs];
  return launchRedis(port, args, dir);
}

export interface SentinelOptions {
  /** The master group name (default "mymaster"). */
  name?: string;
  /** Sentinels that must agree the master is down (default 2). */
  quorum?: number;
  /** `down-after-milliseconds` (default 1000). */
  downAfterMs?: number;
  /** `failover-timeout` (default 3000). */
  failoverTimeoutMs?: number;
}

/**
 * A Redis Sentinel (`redis-server <conf> --sentinel`) on a free port, watching the master on
 * `masterPort`. Its config lives in a writable temp dir (Sentinel rewrites it), removed by `stop`.
 */
export async function startSentinel(masterPort: number, options: SentinelOptions = {}): Promise<TestRedis> {
  const { name = 'mymaster', quorum = 2, downAfterMs = 1000, failoverTimeoutMs = 3000 } = options;
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'spillway-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  await writeFile(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'sentinel resolve-hostnames no',
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} ${quorum}`,
      `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
      `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
      '',
    ].join('\n'),
  );
  return launchRedis(port, [conf, '--sentinel'], dir);
}

/** `redis-cli -p <port> …args`: its output, trimmed. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 2_000 });
  return stdout.trim();
}

const run = promisify(execFile);

/** Runs `redis-server …args` until it answers PING on `port`; `stop` kills it and removes `dir`. */
async function launchRedis(port: number, args: readonly string[], dir: string): Promise<TestRedis> {
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitUntil(() => ping(port), { interval: 50, message: `redis-server to answer PING on port ${port}` });
  };
  const kill = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  const stop = async () => {
    await kill();
    await rm(dir, { recursive: true, force: true });
  };
  await launch();
  return { port, url: `redis://127.0.0.1:${port}`, kill, restart: launch, stop };
}
