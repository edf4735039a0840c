// Follows a Sentinel switchover at once. When Sentinel fails over a master that is still up
// (`SENTINEL FAILOVER`, or a master that comes back), the old master stays a writable master for
// another ~10-20 s until Sentinel demotes it (and only then drops its clients): a client already
// connected to it would keep taking tokens there, apart from the replicas that connect to the new
// master meanwhile, and those takes are lost when it resyncs. So every sentinel is watched for
// `+switch-master`: a client connected elsewhere than the new master reconnects, which asks the
// sentinels again.
//
// Not ioredis' own `failoverDetector`: it disconnects through the connector even while the client
// is connecting, and a connect interrupted that way ends the client for good (status "end", never
// reconnecting) — measured when a master is killed and its replica promoted.

import { isIP } from 'node:net';
import type { Redis } from 'ioredis';

type RedisClass = typeof import('ioredis').Redis;

/** Watches `sentinels` for a switchover of `name` and moves `client` to the new master; stops when the client ends. */
export function followSwitchover(
  RedisClient: RedisClass,
  client: Redis,
  sentinels: ReadonlyArray<{ host: string; port: number }>,
  name: string,
  connectTimeout: number,
): void {
  // the master last announced, until the client is (re)connected and has been checked against it
  let announced: { host: string; port: number } | undefined;
  const connectedElsewhere = (master: { host: string; port: number }): boolean => {
    const stream = client.stream;
    if (!stream || stream.remotePort === undefined) return false;
    return stream.remotePort !== master.port || (isIP(master.host) !== 0 && stream.remoteAddress !== master.host);
  };
  const check = () => {
    if (!announced || client.status !== 'ready') return;
    const master = announced;
    announced = undefined;
    if (connectedElsewhere(master)) client.disconnect(true);
  };
  client.on('ready', check);
  const watchers = sentinels.map((node) => {
    const watcher = new RedisClient({
      host: node.host,
      port: node.port,
      connectTimeout,
      retryStrategy: () => 1_000,
      // the SUBSCRIBE waits for a sentinel that is down at start, and is sent again after a reconnect
      maxRetriesPerRequest: null,
      enableReadyCheck: false,
    });
    watcher.on('error', () => undefined);
    watcher.on('message', (_channel: string, message: string) => {
      // "<name> <old ip> <old port> <new ip> <new port>"
      const [master, , , host, port] = message.split(' ');
      if (master !== name || !host || !port) return;
      announced = { host, port: Number(port) };
      // Connecting or reconnecting: checked once ready (the address may have been resolved before
      // this announcement reached every sentinel).
      check();
    });
    watcher.subscribe('+switch-master').catch(() => undefined);
    return watcher;
  });
  client.once('end', () => {
    for (const watcher of watchers) watcher.disconnect();
  });
}
