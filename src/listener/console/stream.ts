// GET /admin/console/stream: the console's live feed as Server-Sent Events. `state` carries the
// whole view (every sample, and at once after a backend decision so a cooldown shows without
// waiting for the next sample); `decision` carries each decision event as it happens.

import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ConsoleSampler } from '../../telemetry/console-sampler.js';
import type { DecisionEvent, EventBuffer } from '../../telemetry/event-buffer.js';

/** Decision events replayed to a new client, so the list is not empty on open. */
const BACKLOG = 30;

export function registerConsoleStream(app: FastifyInstance, sampler: ConsoleSampler, events: EventBuffer | undefined): void {
  const open = new Set<ServerResponse>();

  app.get('/admin/console/stream', (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    const send = (event: string, data: unknown) => {
      if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    let pending = false;
    // Several decisions of one moment (a walk over a cooling pool) make one extra state message.
    const sendStateSoon = () => {
      if (pending) return;
      pending = true;
      setImmediate(() => {
        pending = false;
        send('state', sampler.view());
      });
    };
    const onDecision = (event: DecisionEvent) => {
      send('decision', event);
      sendStateSoon();
    };
    for (const event of events?.list(BACKLOG) ?? []) send('decision', event);
    const unsubscribe = sampler.subscribe({ view: (view) => send('state', view), decision: onDecision });
    const unfollow = events?.subscribe(onDecision);
    send('state', sampler.view());
    open.add(res);
    request.raw.socket.setTimeout(0);
    res.on('close', () => {
      open.delete(res);
      unsubscribe();
      unfollow?.();
    });
  });

  // A stream never ends by itself: close them, or the admin listener would wait for them forever.
  app.addHook('preClose', (done) => {
    for (const res of open) res.end();
    done();
  });
}
