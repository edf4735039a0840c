// `workers: N` (N > 1): this process becomes the cluster primary. It forks N workers that share
// the listening ports (node:cluster hands connections to them in turn) and makes them one gateway:
//   - backend-state news from one worker goes to every other at once; the primary keeps the
//     current picture (cooldowns, breaker openings, drain/disable) for workers started later;
//   - one health-probe lease per backend, so one worker probes it per interval;
//   - the `store: memory` client buckets live here: workers send their checks in batches;
//   - /metrics on any worker is the sum over all workers (prom-client's AggregatorRegistry);
//   - SIGHUP (or an admin reload on one worker) reloads every worker; SIGTERM/SIGINT drain every
//     worker and then exit; a worker that dies unasked is replaced.

import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { GatewayConfig } from '../config/schema/index.js';
import type { TakeRequest } from '../ratelimit/bucket.js';
import { MemoryBucketStore } from '../ratelimit/memory-store.js';
import { type BusMessage, parseBusMessage } from '../state/backend-bus.js';
import type { WorkerMessage } from '../state/worker-channel.js';
import type { Logger } from '../telemetry/logger.js';

/** The latest shared news per backend key, as end times on this host's clock. */
class Picture {
  readonly #cool = new Map<string, { until: number; src: string; val: string }>();
  readonly #open = new Map<string, number>();
  readonly #mode = new Map<string, 'drain' | 'disable'>();

  note(message: BusMessage, now: number): void {
    switch (message.t) {
      case 'cool': {
        const until = now + message.ms;
        if (until > (this.#cool.get(message.k)?.until ?? 0)) this.#cool.set(message.k, { until, src: message.src, val: message.val });
        break;
      }
      case 'open':
        this.#open.set(message.k, Math.max(this.#open.get(message.k) ?? 0, now + message.ms));
        break;
      case 'mode':
        if (message.mode === 'active') this.#mode.delete(message.k);
        else this.#mode.set(message.k, message.mode);
        break;
      case 'probe':
      case 'spent':
        break;
    }
  }

  messages(now: number): BusMessage[] {
    const out: BusMessage[] = [];
    for (const [k, c] of this.#cool) {
      if (c.until > now) out.push({ t: 'cool', k, ms: c.until - now, src: c.src, val: c.val });
      else this.#cool.delete(k);
    }
    for (const [k, until] of this.#open) {
      if (until > now) out.push({ t: 'open', k, ms: until - now });
      else this.#open.delete(k);
    }
    for (const [k, mode] of this.#mode) out.push({ t: 'mode', k, mode });
    return out;
  }
}

export function workerCount(setting: GatewayConfig['workers'], cpus: number): number {
  return setting === 'auto' ? Math.max(1, cpus) : setting;
}

export async function runPrimary(config: GatewayConfig, count: number, logger: Logger): Promise<number> {
  const picture = new Picture();
  const leases = new Map<string, { holder: number; expires: number }>();
  const buckets = new MemoryBucketStore({ maxBuckets: config.limits.maxMemoryBuckets });
  const aggregator = new AggregatorRegistry();
  const listening = new Map<number, { url: string; admin: string }>();
  let announced = false;
  let viewRequests = 0;
  const gathering = new Map<number, { asker: Worker; id: unknown; left: number; views: unknown[]; timer: NodeJS.Timeout }>();
  let stopping = false;
  const recentExits: number[] = [];

  const others = (from: Worker) => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w !== from);
  const send = (worker: Worker, message: WorkerMessage) => {
    if (worker.isConnected()) worker.send(message, undefined, () => undefined);
  };
  const reply = (worker: Worker, id: unknown, value: unknown) => send(worker, { spillway: 'reply', id, value });

  const onMessage = (worker: Worker, message: unknown) => {
    if (typeof message !== 'object' || message === null) return;
    const m = message as WorkerMessage;
    const now = Date.now();
    switch (m.spillway) {
      case 'bus': {
        const news = parseBusMessage(m.msg);
        if (!news) return;
        picture.note(news, now);
        for (const other of others(worker)) send(other, { spillway: 'bus', msg: news });
        return;
      }
      case 'sync':
        return reply(worker, m.id, picture.messages(now));
      case 'lease': {
        const key = String(m.key);
        const lease = leases.get(key);
        const granted = !lease || lease.holder === worker.id || lease.expires <= now;
        if (granted) leases.set(key, { holder: worker.id, expires: now + 2 * Number(m.interval) });
        return reply(worker, m.id, granted);
      }
      case 'take': {
        const requests = Array.isArray(m.requests) ? (m.requests as TakeRequest[]) : [];
        return reply(
          worker,
          m.id,
          requests.map((request) => buckets.take(request)),
        );
      }
      case 'metrics':
        aggregator.clusterMetrics().then(
          (text) => reply(worker, m.id, text),
          (error: unknown) => send(worker, { spillway: 'reply', id: m.id, error: (error as Error).message }),
        );
        return;
      case 'views': {
        // Every other worker's view of /admin/upstreams; the asker adds its own.
        const targets = others(worker).filter((w) => w.isConnected());
        if (targets.length === 0) return reply(worker, m.id, []);
        const key = ++viewRequests;
        const finish = () => {
          const g = gathering.get(key);
          if (!g) return;
          gathering.delete(key);
          clearTimeout(g.timer);
          reply(g.asker, g.id, g.views);
        };
        gathering.set(key, { asker: worker, id: m.id, left: targets.length, views: [], timer: setTimeout(finish, 800) });
        for (const target of targets) send(target, { spillway: 'view-req', id: key });
        return;
      }
      case 'view-res': {
        const g = gathering.get(Number(m.id));
        if (!g) return;
        g.views.push(m.view);
        if (--g.left === 0) {
          gathering.delete(Number(m.id));
          clearTimeout(g.timer);
          reply(g.asker, g.id, g.views);
        }
        return;
      }
      case 'reloaded':
        for (const other of others(worker)) send(other, { spillway: 'reload' });
        return;
      case 'listening':
        listening.set(worker.id, { url: String(m.url), admin: String(m.admin) });
        if (!announced && listening.size >= count) {
          announced = true;
          const first = [...listening.values()][0]!;
          logger.info({ url: first.url, admin: first.admin, workers: count, pid: process.pid }, 'spillway listening');
        }
        return;
    }
  };

  // SPILLWAY_WORKER (1..N) tells a worker which one it is (a replacement takes the dead one's number).
  const slots = new Map<number, number>();
  const fork = (slot: number) => {
    const worker = cluster.fork({ SPILLWAY_WORKER: String(slot) });
    slots.set(worker.id, slot);
    worker.on('message', (message: unknown) => onMessage(worker, message));
    return worker;
  };

  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id);
    const slot = slots.get(worker.id) ?? 1;
    slots.delete(worker.id);
    for (const [key, lease] of leases) if (lease.holder === worker.id) leases.delete(key);
    if (stopping) return;
    const now = Date.now();
    recentExits.push(now);
    while (recentExits.length > 0 && recentExits[0]! < now - 10_000) recentExits.shift();
    // A worker that keeps dying right after start is replaced more slowly (no fork storm).
    const delay = recentExits.length > 5 ? 1_000 : 0;
    logger.warn(
      { event: 'worker.exit', worker: worker.id, pid: worker.process.pid, code, signal, replaceInMs: delay },
      'worker exited; starting a replacement',
    );
    setTimeout(() => fork(slot), delay).unref();
  });

  // Workers accept from the shared socket themselves (the kernel spreads connections) unless
  // NODE_CLUSTER_SCHED_POLICY=rr says otherwise. With the primary's round-robin, a connection
  // being handed to a worker at the moment it crashes is never answered nor closed; with shared
  // accept, a dead worker loses only the connections it had already accepted.
  if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 1; i <= count; i++) fork(i);

  const onHangup = () => {
    logger.info({ event: 'config.reload', workers: count }, 'SIGHUP: reloading every worker');
    for (const worker of Object.values(cluster.workers ?? {})) if (worker) send(worker, { spillway: 'reload' });
  };
  process.on('SIGHUP', onHangup);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, workers: count, drainMs: config.shutdown.drain }, 'stopping: draining every worker');
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      if (workers.length === 0) return resolve();
      let left = workers.length;
      for (const worker of workers) {
        worker.once('exit', () => {
          if (--left === 0) resolve();
        });
        worker.process.kill('SIGTERM');
      }
      // A worker that does not stop within the drain (and a margin) is killed.
      setTimeout(() => {
        for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
      }, config.shutdown.drain + 5_000).unref();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  process.off('SIGHUP', onHangup);
  buckets.close();
  logger.info('stopped');
  return 0;
}
