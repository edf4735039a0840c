// LLM token counters: tokens in (prompt) and out (completion) by route, upstream, backend and
// model, and by client. `model` and `client` come from requests, so each is bounded: the 20 most
// used values keep their own label, the rest count as "other" (top-labels.ts); a demoted value's
// series are removed.

import { Counter, type Registry } from 'prom-client';
import type { TokenUse } from '../core/events.js';
import type { CompiledBackend, CompiledRoute, CompiledUpstream } from '../snapshot/snapshot.js';
import { backendLabel } from './labels.js';
import { TopLabels } from './top-labels.js';

const TOP = 20;

export function llmTokenMetrics(
  registers: Registry[],
): (route: CompiledRoute, upstream: CompiledUpstream | undefined, backend: CompiledBackend | undefined, use: TokenUse) => void {
  const tokens = new Counter({
    name: 'spillway_llm_tokens_total',
    help: 'LLM tokens of answers on routes with a token policy: direction in (prompt) or out (completion), by route, upstream, backend and model (the 20 most used models, the rest "other").',
    labelNames: ['route', 'upstream', 'backend', 'model', 'direction'],
    registers,
  });
  const clientTokens = new Counter({
    name: 'spillway_llm_client_tokens_total',
    help: 'LLM tokens by client (a 12-hex-digit hash of its rate-limit key; the 20 heaviest clients, the rest "other") and direction.',
    labelNames: ['client', 'direction'],
    registers,
  });
  // A demoted model's series go away: remember which label sets each model has.
  const modelSeries = new Map<string, Map<string, Record<string, string>>>();
  const topModels = new TopLabels(TOP, (model) => {
    for (const labels of modelSeries.get(model)?.values() ?? []) tokens.remove(labels);
    modelSeries.delete(model);
  });
  const topClients = new TopLabels(TOP, (client) => {
    clientTokens.remove({ client, direction: 'in' });
    clientTokens.remove({ client, direction: 'out' });
  });

  return (route, upstream, backend, use) => {
    const total = use.promptTokens + use.completionTokens;
    const model = topModels.label(use.model ?? 'unknown', total);
    const labels = { route: route.name, upstream: upstream?.name ?? '', backend: backend ? backendLabel(backend) : '', model };
    const client = use.client === undefined ? undefined : topClients.label(use.client, total);
    for (const [direction, amount] of [
      ['in', use.promptTokens],
      ['out', use.completionTokens],
    ] as const) {
      if (amount <= 0) continue;
      const series = { ...labels, direction };
      tokens.inc(series, amount);
      let known = modelSeries.get(model);
      if (!known) modelSeries.set(model, (known = new Map()));
      const id = `${series.route}\u0000${series.upstream}\u0000${series.backend}\u0000${direction}`;
      if (!known.has(id)) known.set(id, series);
      if (client !== undefined) clientTokens.inc({ client, direction }, amount);
    }
  };
}
