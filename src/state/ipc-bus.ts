// The bus between worker processes of one host: news goes to the cluster primary, which passes
// it to every other worker at once and keeps the current picture for workers that start later
// (a replacement for a crashed one). The primary also hands out health-probe leases, so one
// worker probes a backend per interval.

import { type BackendBus, type BusMessage, type BusTransport, parseBusMessage } from './backend-bus.js';
import type { WorkerChannel } from './worker-channel.js';

const LEASE_WAIT_MS = 250;

export class IpcBusTransport implements BusTransport {
  readonly name = 'ipc';

  constructor(
    private readonly channel: WorkerChannel,
    private readonly bus: BackendBus,
  ) {
    channel.on('bus', (notice) => {
      const message = parseBusMessage(notice.msg);
      if (message) this.bus.apply(message);
    });
  }

  publish(message: BusMessage): void {
    this.channel.notify({ spillway: 'bus', msg: message });
  }

  lease(key: string, intervalMs: number): Promise<boolean> {
    return this.channel.request<boolean>('lease', { key, interval: intervalMs }, LEASE_WAIT_MS);
  }

  /** Reads the primary's picture (what the other workers learnt before this one started). */
  async ready(timeoutMs: number): Promise<void> {
    const picture = await this.channel.request<unknown[]>('sync', {}, timeoutMs).catch(() => []);
    const now = Date.now();
    for (const item of Array.isArray(picture) ? picture : []) {
      const message = parseBusMessage(item);
      if (message) this.bus.apply(message, now);
    }
  }

  async close(): Promise<void> {}
}
