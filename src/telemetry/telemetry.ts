// Assembles the gateway's telemetry from config: Prometheus metrics, decision-event logs and
// their ring buffer, the per-request lifecycle (request id, request log, spans). The request
// path sees only `observer` and the instrumented handler.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/schema/index.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { RequestHandler } from '../pipeline/proxy-handler.js';
import { combineObservers, type ProxyObserver } from '../snapshot/observer.js';
import { ConsoleTap } from './console-tap.js';
import { EventBuffer } from './event-buffer.js';
import type { Logger } from './logger.js';
import { logObserver, type LogObserver } from './log-observer.js';
import { GatewayMetrics } from './metrics.js';
import { instrumentHandler } from './request-lifecycle.js';
import type { RequestTracer } from './tracing.js';

export interface TelemetryOptions {
  config: GatewayConfig;
  logger: Logger;
  getSnapshot: () => Snapshot;
  tracer?: RequestTracer | undefined;
  /** An extra observer (tests, embedders), called after metrics and logs. */
  observer?: ProxyObserver | undefined;
  random: () => number;
}

export class Telemetry {
  readonly observer: ProxyObserver;
  readonly metrics: GatewayMetrics | undefined;
  readonly events: EventBuffer;
  /** The console's extra tallies; hooked into `observer` only while a console client watches. */
  readonly console: ConsoleTap;
  readonly #logs: LogObserver;
  readonly #options: TelemetryOptions;

  constructor(options: TelemetryOptions) {
    const { config, logger, getSnapshot } = options;
    this.#options = options;
    this.events = new EventBuffer(config.log.events);
    this.#logs = logObserver(logger, this.events);
    this.metrics = config.metrics.enabled ? new GatewayMetrics({ getSnapshot, process: config.metrics.process }) : undefined;
    const observers: ProxyObserver[] = [this.#logs];
    if (this.metrics) observers.unshift(this.metrics.observer);
    if (options.observer) observers.push(options.observer);
    // An object of our own: the console tap swaps entries of it in place while someone watches.
    this.observer = { ...(observers.length === 1 ? observers[0]! : combineObservers(...observers)) };
    this.console = new ConsoleTap(this.observer);
  }

  /** The handler with per-request telemetry; the bare handler when nothing needs it. */
  instrument(handler: RequestHandler): (req: IncomingMessage, res: ServerResponse) => void {
    const { config, tracer, logger, getSnapshot, random } = this.#options;
    const needed =
      this.metrics !== undefined || tracer !== undefined || config.log.requests.sample > 0 || this.#options.observer !== undefined;
    if (!needed) return handler;
    return instrumentHandler(handler, { getSnapshot, observer: this.observer, logger, tracer, random });
  }

  close(): void {
    this.#logs.close();
  }
}
