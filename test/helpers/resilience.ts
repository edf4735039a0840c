// Test helpers for resilience: backends whose behaviour can be switched at run time, an observer
// that records decision events, and a small closed-loop load generator.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { withDefaults, type ProxyObserver } from '../../src/snapshot/observer.js';
import { startBackend, type TestBackend } from './backend.js';

export type Behaviour = (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>;

export interface SwitchableBackend extends TestBackend {
  behaviour: Behaviour;
}

export const ok =
  (name: string): Behaviour =>
  (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ backend: name, url: req.url }));
  };

export const status =
  (code: number, headers: Record<string, string> = {}): Behaviour =>
  (_req, res) => {
    res.writeHead(code, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ status: code }));
  };

export const delayed =
  (ms: number, then: Behaviour): Behaviour =>
  (req, res, body) =>
    new Promise<void>((resolve) => setTimeout(() => resolve(then(req, res, body) as undefined), ms));

/** A backend whose behaviour (per request) is `backend.behaviour`; `/health` has its own switch. */
export async function startSwitchable(name: string, behaviour: Behaviour = ok(name)): Promise<SwitchableBackend & { health: Behaviour }> {
  const holder = { behaviour, health: ok(name) };
  const backend = await startBackend(
    (req, res, body) => (req.url === '/health' ? holder.health(req, res, body) : holder.behaviour(req, res, body)),
    name,
  );
  Object.defineProperty(backend, 'behaviour', { get: () => holder.behaviour, set: (next: Behaviour) => (holder.behaviour = next) });
  Object.defineProperty(backend, 'health', { get: () => holder.health, set: (next: Behaviour) => (holder.health = next) });
  return backend as SwitchableBackend & { health: Behaviour };
}

/** Requests the backend received, without health probes. */
export function served(backend: TestBackend): number {
  return backend.received.filter((request) => request.url !== '/health').length;
}

export interface RecordedEvent {
  type: 'breaker' | 'health' | 'retry' | 'concurrency' | 'attempt' | 'hold';
  backend: string | undefined;
  value: string;
}

export function recordingObserver(): {
  observer: ProxyObserver;
  events: RecordedEvent[];
  of(type: RecordedEvent['type'], backend?: string): string[];
} {
  const events: RecordedEvent[] = [];
  const observer = withDefaults({
    breakerStateChange: (_u, b, state) => void events.push({ type: 'breaker', backend: b.url, value: state }),
    healthChange: (_u, b, healthy) => void events.push({ type: 'health', backend: b.url, value: healthy ? 'healthy' : 'unhealthy' }),
    retry: (_u, b, reason) => void events.push({ type: 'retry', backend: b.url, value: reason }),
    concurrencyRejected: (_u, b, reason) => void events.push({ type: 'concurrency', backend: b?.url, value: reason }),
    holdEnded: (_u, outcome) => void events.push({ type: 'hold', backend: undefined, value: outcome }),
    attempt: (_u, b, outcome) => void events.push({ type: 'attempt', backend: b.url, value: outcome }),
  });
  return {
    observer,
    events,
    of: (type, backend) =>
      events.filter((event) => event.type === type && (backend === undefined || event.backend === backend)).map((event) => event.value),
  };
}

export { sleep } from './wait.js';

/** `workers` loops sending GETs until `stop()` resolves; returns every status seen (0 = network error). */
export async function steadyLoad(url: string, workers: number, stop: Promise<unknown>): Promise<number[]> {
  const statuses: number[] = [];
  let running = true;
  void stop.then(() => (running = false));
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (running) {
        try {
          const res = await fetch(url);
          await res.arrayBuffer();
          statuses.push(res.status);
        } catch {
          statuses.push(0);
        }
      }
    }),
  );
  return statuses;
}

/** Upstream "orders": round-robin over `urls` with `upstreamExtra` (its YAML lines), and a route on / to it, then `routeExtra`. */
export function ordersConfig(urls: string[], upstreamExtra: string, routeExtra = ''): string {
  return `upstreams:
  orders:
    balance: round-robin
    backends:
${urls.map((url) => `      - { url: ${url} }`).join('\n')}
${upstreamExtra}
routes:
  - match: { path: / }
    upstream: orders
${routeExtra}`;
}
