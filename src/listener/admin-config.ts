// GET /admin/config (the active config, secrets redacted, and when / what loaded it) and
// POST /admin/reload (reload now; a rejected file answers 422 with its file:line errors).

import type { FastifyInstance } from 'fastify';
import { redactConfig } from '../config/redact.js';
import type { ConfigReloader, ReloadOutcome } from '../snapshot/reload.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { problemBody } from '../core/problems.js';

function outcomeView(outcome: ReloadOutcome | undefined) {
  if (!outcome) return null;
  const { issues: _issues, ...rest } = outcome;
  return rest;
}

export function registerConfigAdmin(app: FastifyInstance, getSnapshot: () => Snapshot, reloader: ConfigReloader): void {
  app.get('/admin/config', async () => {
    const snapshot = getSnapshot();
    return {
      file: reloader.active.file,
      loadedAt: reloader.active.loadedAt,
      loadedBy: reloader.active.trigger,
      sha256: reloader.active.sha256 ?? null,
      reloads: { ...reloader.counts },
      lastReload: outcomeView(reloader.last),
      config: redactConfig(snapshot.config),
    };
  });

  app.post('/admin/reload', async (_request, reply) => {
    const outcome = await reloader.reload('admin');
    if (outcome.result === 'rejected') {
      return reply
        .code(422)
        .type('application/problem+json')
        .header('cache-control', 'no-store')
        .send(
          problemBody('config-rejected', `the config file was rejected; the running config keeps serving`, {
            errors: outcome.errors,
            issues: outcome.issues,
            file: outcome.file,
          }),
        );
    }
    return { ...outcomeView(outcome), loadedAt: reloader.active.loadedAt };
  });
}
