// A WebSocket upgrade's trip through an upstream pool: the same selection as any request
// (priority, weight, cooldowns, never the same backend twice), and a backend that refuses the
// upgrade with 429 (or 503 with a retry hint) cools down while the handshake goes straight on
// to the next backend. The first 101 becomes a tunnel; any other answer is relayed as is.

import { request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../snapshot/snapshot.js';
import { buildResponseHeaders } from './forward-headers.js';
import { throttleCooldown } from '../resilience/cooldown.js';
import type { BreakerVerdict } from '../resilience/breaker.js';
import { applyHeaderEdit } from '../routing/header-edit.js';
import { isReady, poolBlock } from '../balance/select.js';
import { BackendWalk, type ExchangeContext } from './backend-walk.js';
import { answerPoolBlocked } from './pool-answers.js';
import type { ResponseSink } from './sink.js';
import { Tunnel, type TunnelRegistry } from './websocket-tunnel.js';

export interface UpgradeRequest {
  /** Path and query as the backend should see them, before the backend's own base path. */
  path: string;
  /** Client headers after hop-by-hop removal and the route's removeHeaders. */
  headers: Record<string, string | string[]>;
  /** The client's Upgrade value ("websocket"). */
  upgrade: string;
  clientHost: string | undefined;
  clientSocket: Duplex;
  /** Bytes the client sent after its handshake (normally none). */
  head: Buffer;
}

export class WebSocketExchange extends BackendWalk {
  retries = 0;
  done = false;
  current: ClientRequest | undefined;

  constructor(
    readonly sink: ResponseSink,
    readonly route: CompiledRoute,
    upstream: CompiledUpstream,
    readonly request: UpgradeRequest,
    context: ExchangeContext,
    readonly tunnels: TunnelRegistry,
  ) {
    super(upstream, context);
  }

  start(): void {
    this.sink.onGone(() => {
      if (this.done) return;
      this.done = true;
      this.current?.destroy();
    });
    this.next(Date.now());
  }

  next(now: number): void {
    const backend = this.pick(now);
    if (backend) {
      this.dispatchTo(backend);
      return;
    }
    this.done = true;
    // Every backend cooling → the gateway's 429; breakers open / unhealthy → 503; only
    // concurrency slots taken → 503 concurrency-limit (a handshake does not wait in the queue).
    answerPoolBlocked(this.sink, this.route, this.upstream, poolBlock(this.upstream.backends, now), now, this.context.observer);
  }

  dispatchTo(backend: CompiledBackend): void {
    this.begin(backend);
    const { upstream, request } = this;
    const url = new URL(backend.url);
    const hostValue = this.hostFor(backend, request.clientHost);
    let headers: Record<string, string | string[]> = { ...request.headers };
    if (hostValue !== undefined) headers.host = hostValue;
    if (backend.headerEdit) headers = applyHeaderEdit(headers, backend.headerEdit);
    const outgoing: OutgoingHttpHeaders = { ...headers, connection: 'Upgrade', upgrade: request.upgrade };

    const startedAt = performance.now();
    const elapsed = () => performance.now() - startedAt;
    const tls = backend.tls;
    const options = {
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (tls ? 443 : 80),
      method: 'GET',
      path: backend.basePath + request.path,
      headers: outgoing,
      agent: false as const,
      ...(tls ? { rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca ? { ca: tls.ca } : {}), servername: tls.servername ?? '' } : {}),
    };
    const req = (tls ? httpsRequest : httpRequest)(options);
    this.current = req;
    const { state } = backend;
    let ticket = state.breaker !== undefined ? state.breaker.begin() : -1;
    // The handshake's verdict for the backend's breaker (once): 101 success, throttle neutral,
    // a connection failure or a breaker status failure.
    const settle = (verdict: BreakerVerdict) => {
      if (ticket < 0) return;
      state.breaker?.end(ticket, verdict);
      ticket = -1;
    };
    let released = false;
    // A tunnel holds its slot until it closes (concurrency limits count open WebSockets).
    const release = () => {
      if (released) return;
      released = true;
      settle('neutral');
      state.releaseSlot();
    };

    // connect timeout, then the headers timeout for the handshake answer
    let timer: NodeJS.Timeout | undefined = setTimeout(
      () => req.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })),
      upstream.timeouts.connect,
    );
    req.once('socket', (socket: Socket) => {
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        timer = setTimeout(
          () => req.destroy(Object.assign(new Error('no upgrade answer in time'), { code: 'UND_ERR_HEADERS_TIMEOUT' })),
          upstream.timeouts.headers,
        );
      });
    });
    const stopTimer = () => {
      clearTimeout(timer);
      timer = undefined;
    };

    req.once('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      stopTimer();
      settle('success');
      this.context.observer.attempt(upstream, backend, 'ok', 101, elapsed());
      if (this.done) {
        release();
        socket.destroy();
        return;
      }
      this.done = true;
      const tunnel = new Tunnel(request.clientSocket as Socket, socket, upstream.timeouts.websocketIdle);
      this.context.observer.websocketOpened(upstream, backend);
      tunnel.onClosed(() => {
        release();
        this.context.observer.websocketClosed(upstream, backend, tunnel.reason, performance.now() - tunnel.openedAt);
      });
      this.tunnels.add(tunnel);
      tunnel.open(res, head, request.head);
    });

    req.once('response', (res: IncomingMessage) => {
      stopTimer();
      const status = res.statusCode ?? 0;
      const now = Date.now();
      const decision = throttleCooldown(status, res.headers, upstream.throttle, now);
      settle(decision ? 'neutral' : state.breaker?.policy.statuses.has(status) ? 'failure' : 'success');
      if (decision) {
        this.coolDown(backend, decision, now);
        this.context.observer.attempt(upstream, backend, 'throttled', status, elapsed());
        const more =
          this.attempts < upstream.maxAttempts && upstream.backends.some((b) => (this.tried & (1 << b.index)) === 0 && isReady(b, now));
        if (!this.done && (more || !this.anyReady(now))) {
          res.resume();
          release();
          this.next(now);
          return;
        }
      } else {
        this.context.observer.attempt(upstream, backend, 'ok', status, elapsed());
      }
      if (this.done) {
        res.destroy();
        release();
        return;
      }
      // The backend answered the handshake without switching (401, 404, ...): pass it on.
      this.done = true;
      this.sink.start(status, buildResponseHeaders(res.headers));
      res.on('data', (chunk: Buffer) => {
        if (!this.sink.write(chunk)) {
          res.pause();
          this.sink.onDrain(() => res.resume());
        }
      });
      res.once('end', () => {
        release();
        this.sink.end();
      });
      res.once('error', () => {
        release();
        this.sink.abort(new Error('backend response failed'));
      });
    });

    req.once('error', (error: Error & { code?: string }) => {
      stopTimer();
      if (!this.done) settle('failure');
      release();
      if (this.done) return;
      const failure = this.failed(backend, error);
      const code = failure.problem;
      this.context.observer.attempt(upstream, backend, failure.timedOut ? 'timeout' : 'error', 0, elapsed());
      // A handshake the backend never saw (refused, unreachable, connect timeout) goes on to
      // another backend, as for requests: always without a retry block, within maxRetries with one.
      const retry = upstream.resilience.retry;
      if (failure.kind === 'connect' && (retry === undefined || retry.implicit || this.retries < retry.maxRetries)) {
        const next = this.pick(Date.now());
        if (next) {
          if (retry !== undefined && !retry.implicit) this.retries++;
          this.context.observer.retry(upstream, backend, code);
          this.dispatchTo(next);
          return;
        }
      }
      this.done = true;
      this.sink.problem(code, `${upstream.name}: ${error.message}`, { extensions: { upstream: upstream.name } });
    });
    req.end();
  }
}
