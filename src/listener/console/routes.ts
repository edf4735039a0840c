// The live console on the admin listener: `/` → `/console` (the page), its static files under
// `/console/`, and the live feed under `/admin/console/` (guarded like the rest of /admin/*).
// The page reads the running config and reloads through the existing /admin/config and
// /admin/reload.

import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ConsoleSampler } from '../../telemetry/console-sampler.js';
import type { EventBuffer } from '../../telemetry/event-buffer.js';
import { consoleAsset } from './assets.js';
import { registerConsoleStream } from './stream.js';

// The page loads only its own files and talks only to this listener.
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export function registerConsole(app: FastifyInstance, sampler: ConsoleSampler, events: EventBuffer | undefined): void {
  app.get('/', async (_request, reply) => reply.redirect('/console', 302));
  const page = (name: string) => async (_request: unknown, reply: FastifyReply) => {
    const asset = consoleAsset(name);
    if (!asset) return reply.callNotFound();
    return reply.headers(PAGE_HEADERS).type(asset.type).send(asset.body);
  };
  app.get('/console', page('index.html'));
  app.get<{ Params: { file: string } }>('/console/:file', async (request, reply) => page(request.params.file)(request, reply));
  app.get('/admin/console/state', async () => sampler.view());
  registerConsoleStream(app, sampler, events);
}
