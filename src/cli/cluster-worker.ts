// A worker process of `workers: N`: the pieces that make it one part of a single gateway — its
// backend-state bus and `store: memory` buckets go through the cluster primary, /metrics answers
// the sum over all workers, an admin reload here reloads the others, and an order to reload from
// the primary is obeyed. See cluster-primary.ts for the other side.

import { AggregatorRegistry } from 'prom-client';
import type { GatewayOptions, Gateway } from '../listener/gateway.js';
import { IpcBucketStore } from '../state/ipc-bucket-store.js';
import { IpcBusTransport } from '../state/ipc-bus.js';
import { WorkerChannel } from '../state/worker-channel.js';

const METRICS_WAIT_MS = 5_000;

export class WorkerLink {
  readonly channel = new WorkerChannel();

  /** What the Gateway needs to share state and buckets through the primary. */
  gatewayOptions(): Pick<GatewayOptions, 'busTransports' | 'memoryBuckets'> {
    return {
      busTransports: [(bus) => new IpcBusTransport(this.channel, bus)],
      memoryBuckets: (local) => new IpcBucketStore(this.channel, local),
    };
  }

  attach(gateway: Gateway): void {
    const metrics = gateway.telemetry.metrics;
    if (metrics) {
      // The primary asks every worker for its registry (prom-client's cluster messages) and sums.
      AggregatorRegistry.setRegistries([metrics.registry]);
      // Constructing one registers the worker's answer to the primary's requests.
      new AggregatorRegistry();
      metrics.source = () => this.channel.request<string>('metrics', {}, METRICS_WAIT_MS);
    }
    gateway.reloader.onApplied = (outcome) => {
      if (outcome.trigger === 'admin') this.channel.notify({ spillway: 'reloaded' });
    };
    this.channel.on('reload', () => void gateway.reloader.reload('SIGHUP'));
  }

  listening(gateway: Gateway): void {
    this.channel.notify({ spillway: 'listening', url: gateway.url, admin: gateway.adminUrl });
  }
}
