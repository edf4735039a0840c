// A worker process of `workers: N`: the pieces that make it one part of a single gateway — its
// backend-state bus and `store: memory` buckets go through the cluster primary, /metrics answers
// the sum over all workers, an admin reload here reloads the others, and an order to reload from
// the primary is obeyed. See cluster-primary.ts for the other side.

import { AggregatorRegistry } from 'prom-client';
import type { GatewayOptions, Gateway } from '../listener/gateway.js';
import { sumUpstreamsViews, type UpstreamsView, upstreamsView } from '../listener/admin.js';
import { IpcBucketStore } from '../state/ipc-bucket-store.js';
import { IpcBusTransport } from '../state/ipc-bus.js';
import { WorkerChannel } from '../state/worker-channel.js';

const METRICS_WAIT_MS = 5_000;
const VIEWS_WAIT_MS = 1_000;

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
    // Admin views: the primary collects every worker's view and sums the counters.
    this.channel.on('view-req', (request) =>
      this.channel.notify({ spillway: 'view-res', id: request.id, view: upstreamsView(gateway.snapshot) }),
    );
    gateway.upstreamsSource = async () => {
      const views = await this.channel.request<UpstreamsView[]>('views', {}, VIEWS_WAIT_MS).catch(() => []);
      // This worker's own view first: its backend state is the shared picture; counters are summed.
      return sumUpstreamsViews([upstreamsView(gateway.snapshot), ...views.filter((view) => view && typeof view === 'object')]);
    };
  }

  listening(gateway: Gateway): void {
    this.channel.notify({ spillway: 'listening', url: gateway.url, admin: gateway.adminUrl });
  }
}
