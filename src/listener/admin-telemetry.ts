// Admin endpoints of telemetry: GET /metrics (Prometheus text format) and GET /admin/events
// (the recent decision events, oldest first; ?limit=N for the newest N).

import type { FastifyInstance } from 'fastify';
import type { EventBuffer } from '../telemetry/event-buffer.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';

export function registerTelemetryRoutes(
  app: FastifyInstance,
  options: { metrics?: GatewayMetrics | undefined; events?: EventBuffer | undefined },
): void {
  const { metrics, events } = options;
  if (metrics) {
    app.get('/metrics', async (_request, reply) => {
      const text = await metrics.scrape();
      return reply.header('content-type', metrics.contentType).send(text);
    });
  }
  if (events) {
    app.get<{ Querystring: { limit?: string } }>('/admin/events', async (request) => {
      const limit = Number.parseInt(request.query.limit ?? '', 10);
      return { capacity: events.capacity, events: events.list(Number.isFinite(limit) && limit >= 0 ? limit : undefined) };
    });
  }
}
