// WebSocket upgrades on the proxy listener: the same path normalisation, route table, client rate
// limits, split and backend selection as any request (mirrors do not apply to upgrades), then
// a byte tunnel to the backend that accepted (src/upstream/websocket-exchange.ts).

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { enforceRateLimit, upgradePort } from './limit-stage.js';
import { isTargetRefusal, readTarget } from '../routing/target.js';
import { enforceAuth } from './auth-stage.js';
import { forwardPathOf } from './forward-path.js';
import { RequestView } from '../routing/request-view.js';
import { applyHeaderOps } from '../routing/rewrite.js';
import { matchRoute } from '../routing/route-table.js';
import { pickSplit } from '../routing/split.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { ExchangeContext } from '../exchange/exchange.js';
import { removeHeaders } from '../routing/header-edit.js';
import { WebSocketExchange } from '../exchange/websocket-exchange.js';
import type { TunnelRegistry } from '../exchange/websocket-tunnel.js';
import { buildRequestHeaders } from '../exchange/forward-headers.js';
import { SocketSink } from '../exchange/socket-sink.js';

export interface UpgradeHandlerOptions {
  getSnapshot: () => Snapshot;
  context: ExchangeContext;
  proto: 'http' | 'https';
  tunnels: TunnelRegistry;
}

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export function createUpgradeHandler(options: UpgradeHandlerOptions): UpgradeHandler {
  const { getSnapshot, context, proto, tunnels } = options;
  return function handleUpgrade(req, socket, head) {
    // A client that vanishes mid-handshake must never become an uncaught error.
    socket.on('error', () => socket.destroy());
    const sink = new SocketSink(socket);
    const upgrade = req.headers.upgrade;
    if (upgrade?.toLowerCase() !== 'websocket' || req.method !== 'GET') {
      sink.problem('bad-request', 'only WebSocket upgrades (GET with Upgrade: websocket) are proxied');
      return;
    }
    const snapshot = getSnapshot();
    const target = readTarget(req.url ?? '/', snapshot.paths);
    if (isTargetRefusal(target)) {
      sink.problem(target.problem, target.detail);
      return;
    }
    const request = new RequestView('GET', target.match, target.query, req.headers, () => snapshot.clientIp(req));
    // A handshake has no body: body conditions do not match it.
    request.setBody(undefined);
    const matched = matchRoute(snapshot.routes, request);
    if (!matched) {
      sink.problem('route-not-found', `no route matches GET ${target.match}`);
      return;
    }
    const { route, params } = matched;
    const { action } = route;
    if (action.kind === 'respond') {
      sink.problem('bad-request', `route "${route.name}" answers statically and does not accept WebSocket upgrades`);
      return;
    }
    if (action.kind === 'aggregate') {
      sink.problem('bad-request', `route "${route.name}" aggregates JSON answers and does not accept WebSocket upgrades`);
      return;
    }
    route.stats.requests++;
    const forward = () => {
      const upstream = action.kind === 'upstream' ? action.upstream : pickSplit(action.split, request, context.random).target;
      route.stats.countUpstream(upstream.name);
      const headers = buildRequestHeaders(req, {
        host: undefined,
        proto,
        dropContentLength: false,
        trustedProxies: snapshot.trustedProxies,
      });
      if (route.removeHeaders) removeHeaders(headers, route.removeHeaders);
      if (route.requestHeaders) applyHeaderOps(headers, route.requestHeaders);
      const forwardPath = forwardPathOf(route, target, params);
      new WebSocketExchange(
        sink,
        route,
        upstream,
        { path: forwardPath, headers, upgrade, clientHost: req.headers.host, clientSocket: socket, head },
        context,
        tunnels,
      ).start();
    };
    // 3. auth, then limits: a handshake counts as one request of the route's rate limits
    const limits = (identity: string | undefined) => {
      // A handshake is one request: its reservation (an in-flight slot) is settled as it goes on.
      if (route.rateLimit)
        enforceRateLimit(
          route.rateLimit,
          req,
          sink,
          upgradePort,
          route.name,
          context.observer,
          (reservation) => {
            reservation.settle(undefined);
            forward();
          },
          identity,
        );
      else forward();
    };
    if (route.auth) enforceAuth(route.auth, req, sink, upgradePort, limits);
    else limits(undefined);
  };
}
