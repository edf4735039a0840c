// Operators steer backends at run time (HAProxy's drain and maint):
//   POST /admin/backends/{id}/drain    no new requests; requests in flight finish; health checks go on
//   POST /admin/backends/{id}/disable  no requests and no health probes
//   POST /admin/backends/{id}/enable   back in rotation
// The mode lives in the backend's state, so it survives reloads, and goes on the state bus, so
// every worker and every replica sharing Redis applies it at once. These are writes: the admin
// guard asks for the token (or, tokenless on loopback, a JSON content type).

import type { FastifyInstance } from 'fastify';
import { problemBody } from '../core/problems.js';
import type { AdminMode } from '../state/backend-state.js';
import type { CompiledBackend, CompiledUpstream, Snapshot } from '../snapshot/snapshot.js';

const ACTIONS: Record<string, AdminMode> = { drain: 'drain', disable: 'disable', enable: 'active' };

/** The id operators use: `<upstream>:<backend name, or its index in the pool>`. */
export function adminBackendId(upstream: CompiledUpstream, backend: CompiledBackend): string {
  return `${upstream.name}:${backend.name ?? backend.index}`;
}

export function findBackend(snapshot: Snapshot, id: string): CompiledBackend | undefined {
  for (const upstream of snapshot.upstreams.values()) {
    for (const backend of upstream.backends) {
      if (id === adminBackendId(upstream, backend) || id === `${upstream.name}:${backend.index}` || id === backend.id) return backend;
    }
  }
  return undefined;
}

export function registerBackendAdmin(app: FastifyInstance, getSnapshot: () => Snapshot): void {
  app.post<{ Params: { id: string; action: string } }>('/admin/backends/:id/:action', async (request, reply) => {
    const mode = ACTIONS[request.params.action];
    const { id } = request.params;
    const backend = mode === undefined ? undefined : findBackend(getSnapshot(), id);
    if (mode === undefined || backend === undefined) {
      const detail = mode === undefined ? `unknown action (drain, disable or enable)` : `no backend ${JSON.stringify(id)}`;
      return reply
        .code(404)
        .type('application/problem+json')
        .header('cache-control', 'no-store')
        .send(problemBody('backend-not-found', detail, { id }));
    }
    const changed = backend.state.setMode(mode);
    return { id, mode, changed, inFlight: backend.state.inFlight };
  });
}
