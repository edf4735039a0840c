// One combined results file for a set of rounds scenarios (run.ts --save NAME), e.g. the baseline
// of a build: bench/results/NAME.json (figures per scenario and target, self-checks, environment)
// and bench/results/NAME.md (one table per scenario).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS_DIR } from './paths.ts';
import { fmt, spreadText, table } from './format.ts';
import type { Environment, ScenarioResult } from './results.ts';

export function writeCombined(
  name: string,
  results: Record<string, ScenarioResult>,
  env: Environment,
): { jsonPath: string; mdPath: string } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const date = new Date().toISOString();
  const scenarios = Object.fromEntries(
    Object.entries(results).map(([scenario, r]) => [
      scenario,
      r.summary
        ? {
            ...r.summary,
            noisy: r.noisy,
            notes: r.notes,
            date: r.json.date,
            loadAverage: r.json.environment.loadAverage,
            machineBusyBefore: r.json.environment.machineBusyBefore,
          }
        : { note: 'no rounds summary (not a rounds scenario)', json: r.json },
    ]),
  );
  const json = {
    name,
    date,
    node: env.node,
    cpus: env.cpus,
    cpuModel: env.cpuModel,
    gatewayDir: env.gatewayDir,
    gatewayCommit: env.gatewayCommit,
    benchCommit: env.benchCommit,
    environment: env,
    scenarios,
  };
  const jsonPath = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`);

  const parts = [
    `# spillway bench — ${name}`,
    '',
    `${date}: gateway \`${env.gatewayDir}\` at commit ${env.gatewayCommit ?? '?'} (bench ${env.benchCommit ?? '?'}), node ${env.node}, ${env.cpus} × ${env.cpuModel ?? 'CPU'}. Written by \`node bench/run.ts … --save ${name}\`.`,
    '',
    'CPU µs/req and bytes/req: the measured process (spillway, the proxy, or the origin for *direct*) at a fixed open-loop rate, ÷ requests answered; bytes are V8 heap bytes allocated (GC-freed + heap growth). rps and p99: closed loop. All figures: median [min–max] over interleaved rounds.',
  ];
  for (const [scenario, r] of Object.entries(results)) {
    parts.push('', `## ${scenario}`, '');
    const s = r.summary;
    if (!s) {
      parts.push(r.printed);
      continue;
    }
    parts.push(
      `Settings: ${s.settings.repeat} rounds; warm-up ${s.settings.warmup}s; ${s.settings.rate} req/s × ${s.settings.rateDuration}s; closed loop ${s.settings.duration}s; ${s.settings.connections} connections. Load average before: ${fmt(r.json.environment.loadAverage[0], 2)}.`,
      '',
    );
    parts.push(
      table(
        ['target', 'CPU µs/req', 'bytes/req', 'rps median [min–max]', 'p99 ms (closed)', 'p99 ms @ rate'],
        Object.entries(s.figures).map(([t, f]) => [
          t,
          spreadText(f.cpuUsPerReq, 1),
          spreadText(f.bytesPerReq, 0),
          spreadText(f.rps, 0),
          spreadText(f.p99Ms, 1),
          spreadText(f.ratedP99Ms, 1),
        ]),
      ),
    );
    for (const c of s.selfCheck) parts.push('', `Self-check: ${c.verdict}`);
  }
  const mdPath = join(RESULTS_DIR, `${name}.md`);
  writeFileSync(mdPath, `${parts.join('\n')}\n`);
  return { jsonPath, mdPath };
}
