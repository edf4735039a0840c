// A real Redis Cluster for system tests: six redis-servers (three masters, three replicas) on
// free ports in temp dirs, joined with `redis-cli --cluster create … --cluster-replicas 1`.
// `killMasterOf(key)` SIGKILLs the master that holds a key's slot; its replica takes over after
// `--cluster-node-timeout` (1 s) and an election.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './redis.js';
import { waitUntil } from './wait.js';

const run = promisify(execFile);

export interface TestRedisCluster {
  /** Every node's port (masters and replicas at the start). */
  ports: number[];
  /** "127.0.0.1:<port>" seeds for `redis.cluster`. */
  seeds: string[];
  /** Port of the master that serves `key`'s slot now. */
  masterOf(key: string): Promise<number>;
  /** SIGKILLs that master; resolves once it is gone. */
  killMasterOf(key: string): Promise<number>;
  /** Resolves once every slot is served again (a replica took over) and the cluster says ok. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisCluster(size = 6): Promise<TestRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < size; i++) ports.push(await freePort());
  const children = new Map<number, ChildProcess>();
  for (const port of ports) {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--cluster-enabled',
        'yes',
        '--cluster-node-timeout',
        '1000',
        // replicas sync at once (the default waits 5 s): a replica that never synced cannot take over
        '--repl-diskless-sync-delay',
        '0',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    );
    children.set(port, child);
  }
  const stop = async () => {
    await Promise.all(
      [...children.values()].map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  const admin = (port: number) => {
    const client = new Redis(port, '127.0.0.1', { retryStrategy: () => 50, maxRetriesPerRequest: 1, lazyConnect: false });
    client.on('error', () => undefined);
    return client;
  };
  const alive = () => ports.filter((port) => children.get(port)!.exitCode === null && children.get(port)!.signalCode === null);
  const withNode = async <T>(fn: (client: Redis) => Promise<T>): Promise<T> => {
    const client = admin(alive()[0]!);
    try {
      return await fn(client);
    } finally {
      client.disconnect();
    }
  };
  const masterOf = (key: string) =>
    withNode(async (client) => {
      const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
      const ranges = (await client.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no node serves slot ${slot}`);
      return Number(range[2][1]);
    });
  const waitHealthy = async (timeoutMs = 20_000) => {
    await waitUntil(
      async () => {
        for (const port of alive()) {
          const client = admin(port);
          try {
            const info = String(await client.call('CLUSTER', 'INFO'));
            if (!info.includes('cluster_state:ok')) return false;
          } catch {
            return false;
          } finally {
            client.disconnect();
          }
        }
        return true;
      },
      { timeout: timeoutMs, interval: 100, message: 'the redis cluster to report cluster_state:ok on every live node' },
    );
  };
  try {
    await Promise.all(
      ports.map((port) =>
        waitUntil(
          async () => {
            const client = admin(port);
            try {
              return (await client.ping()) === 'PONG';
            } catch {
              return false;
            } finally {
              client.disconnect();
            }
          },
          { interval: 50, message: `redis-server on port ${port} to answer PING` },
        ),
      ),
    );
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await waitHealthy(30_000);
    // every replica attached to its master and in sync (a failover needs one)
    await waitUntil(
      async () => {
        let synced = 0;
        for (const port of ports) {
          const client = admin(port);
          try {
            const info = String(await client.info('replication'));
            if (info.includes('role:slave') && info.includes('master_link_status:up')) synced++;
          } finally {
            client.disconnect();
          }
        }
        return synced === size / 2;
      },
      { timeout: 30_000, interval: 100, message: 'every replica to be in sync with its master' },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ports,
    seeds: ports.map((port) => `127.0.0.1:${port}`),
    masterOf,
    killMasterOf: async (key) => {
      const port = await masterOf(key);
      const child = children.get(port)!;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      return port;
    },
    waitHealthy,
    stop,
  };
}
