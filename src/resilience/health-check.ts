// Active health checks for one backend: a probe every `interval`, each bounded by `timeout`.
// `unhealthyAfter` consecutive failures mark the backend unhealthy (selection skips it);
// `healthyAfter` consecutive passes bring it back. A backend starts healthy so a gateway that
// just started (or reloaded) serves at once.

import type { Dispatcher } from 'undici';
import type { HealthCheckPolicy } from './policy.js';

export interface ProbeTarget {
  readonly dispatcher: Dispatcher;
  /**
   * The probe's request headers: Host (the backend URL's host) and the backend's own headers
   * (credentials), so a probe is authenticated like a request.
   */
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly servername?: string | undefined;
}

export type ProbeListener = (passed: boolean, healthyChanged: boolean) => void;

export class HealthMonitor {
  healthy = true;
  consecutivePasses = 0;
  consecutiveFailures = 0;
  lastProbeAt = 0;
  lastError: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #probing = false;
  #stopped = false;
  /**
   * Asked before each probe: false skips it (a peer holds the probe lease and shares its result
   * through recordFromPeer). Absent: always probe.
   */
  gate: (() => boolean | Promise<boolean>) | undefined;
  /** Called with each result of a probe this monitor ran itself (not with peers' results). */
  onLocalProbe: ((passed: boolean, error: string | undefined) => void) | undefined;

  constructor(
    readonly policy: HealthCheckPolicy,
    public target: ProbeTarget,
    private readonly listener: ProbeListener,
  ) {}

  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => void this.probe(), this.policy.interval);
    this.#timer.unref();
    void this.probe();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One probe; overlapping probes are skipped (a slow backend is not probed twice at once). */
  async probe(): Promise<void> {
    if (this.#probing || this.#stopped) return;
    this.#probing = true;
    let passed = false;
    try {
      if (this.gate && !(await this.gate())) return;
      const { target } = this;
      const options: Dispatcher.RequestOptions & { servername?: string } = {
        path: this.policy.path,
        method: this.policy.method,
        headers: { ...target.headers },
        headersTimeout: this.policy.timeout,
        bodyTimeout: this.policy.timeout,
        signal: AbortSignal.timeout(this.policy.timeout),
      };
      if (target.servername) options.servername = target.servername;
      const response = await target.dispatcher.request(options);
      await response.body.dump().catch(() => undefined);
      const { statusCode } = response;
      passed = this.policy.statuses ? this.policy.statuses.has(statusCode) : statusCode >= 200 && statusCode < 400;
      this.lastError = passed ? undefined : `status ${statusCode}`;
    } catch (error) {
      this.lastError = (error as Error).message;
    } finally {
      this.#probing = false;
    }
    if (this.#stopped) return;
    this.lastProbeAt = Date.now();
    this.#record(passed);
    this.onLocalProbe?.(passed, this.lastError);
  }

  /** A probe result a peer obtained (it held the lease): counted as if probed here. */
  recordFromPeer(passed: boolean, error: string | undefined): void {
    if (this.#stopped) return;
    this.lastProbeAt = Date.now();
    this.lastError = passed ? undefined : error;
    this.#record(passed);
  }

  #record(passed: boolean): void {
    let changed = false;
    if (passed) {
      this.consecutivePasses++;
      this.consecutiveFailures = 0;
      if (!this.healthy && this.consecutivePasses >= this.policy.healthyAfter) changed = this.healthy = true;
    } else {
      this.consecutiveFailures++;
      this.consecutivePasses = 0;
      if (this.healthy && this.consecutiveFailures >= this.policy.unhealthyAfter) {
        this.healthy = false;
        changed = true;
      }
    }
    this.listener(passed, changed);
  }

  /** Epoch ms when an unhealthy backend could be healthy again at the earliest. */
  get healthyAgainAt(): number {
    if (this.healthy) return 0;
    const probesLeft = Math.max(1, this.policy.healthyAfter - this.consecutivePasses);
    return (this.lastProbeAt || Date.now()) + probesLeft * this.policy.interval;
  }
}
