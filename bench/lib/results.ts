// Results: the environment of a run, bench/results/<name>.{json,md}, and what every scenario returns.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { StopInfo } from '../../test/helpers/gateway-process.ts';
import { RESULTS_DIR, ROOT, gatewayTarget } from './paths.ts';
import type { Gateway } from './processes.ts';
import type { Log, SelfCheck, Settings, TargetFigures } from './rounds.ts';

const readVersion = (dir: string, name?: string): string | undefined => {
  try {
    return (
      JSON.parse(readFileSync(name ? join(dir, 'node_modules', name, 'package.json') : join(dir, 'package.json'), 'utf8')) as {
        version?: string;
      }
    ).version;
  } catch {
    return undefined;
  }
};

const gitCommit = (dir: string): string | undefined => {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
};

export interface Environment {
  node: string;
  platform: string;
  cpus: number;
  cpuModel: string | undefined;
  totalMemMb: number;
  loadAverage: number[];
  versions: Record<string, string | undefined>;
  spillwayVersion: string | undefined;
  gatewayDir: string;
  gatewayCommit: string | undefined;
  benchCommit: string | undefined;
  [extra: string]: unknown;
}

export function environment(): Environment {
  const cpu = cpus();
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpu.length,
    cpuModel: cpu[0]?.model,
    totalMemMb: Math.round(totalmem() / 1024 / 1024),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    versions: Object.fromEntries(['autocannon', 'fastify', '@fastify/http-proxy', 'undici'].map((n) => [n, readVersion(ROOT, n)])),
    spillwayVersion: readVersion(gatewayTarget.dir),
    gatewayDir: gatewayTarget.dir,
    gatewayCommit: gitCommit(gatewayTarget.dir),
    benchCommit: gitCommit(ROOT),
  };
}

const MD_MARKER = '<!-- runs: newest first; written by bench/run.ts -->';
const MD_KEEP_RUNS = 20;

/**
 * Writes bench/results/<name>.json (this run) and refreshes bench/results/<name>.md: the header is
 * rewritten, this run's section goes on top, older sections are kept (up to 20).
 */
export function writeResults(
  name: string,
  { json, title, intro, section }: { json: unknown; title: string; intro: string; section: string },
): { jsonPath: string; mdPath: string } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const jsonPath = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
  const mdPath = join(RESULTS_DIR, `${name}.md`);
  let older: string[] = [];
  if (existsSync(mdPath)) {
    const text = readFileSync(mdPath, 'utf8');
    const at = text.indexOf(MD_MARKER);
    const legacy = text.indexOf('<!-- runs: newest first; written by bench/run.mjs -->');
    const from = at >= 0 ? at + MD_MARKER.length : legacy >= 0 ? text.indexOf('-->', legacy) + 3 : -1;
    if (from >= 0) {
      older = text
        .slice(from)
        .split(/\n(?=## )/)
        .map((s) => s.trim())
        .filter((s) => s.startsWith('## '));
    }
  }
  const sections = [section.trim(), ...older].slice(0, MD_KEEP_RUNS);
  writeFileSync(mdPath, `# ${title}\n\n${intro.trim()}\n\n${MD_MARKER}\n\n${sections.join('\n\n')}\n`);
  return { jsonPath, mdPath };
}

/** What the JSON keeps of a gateway's log. */
export const gatewayLog = (g: Gateway): Record<string, unknown> => ({
  lines: g.log.lines,
  bytes: g.log.bytes,
  warningCount: g.log.warningCount,
  byMsg: g.log.byMsg,
  warnings: g.log.warnings,
});

/** Notes about a gateway's run: node flags, the scenario's extra notes, warn/error lines, a non-zero exit. */
export function gatewayNotes(
  g: Gateway,
  stop: StopInfo | undefined,
  { name = 'spillway', nodeArgs = false, extra = [] as string[] } = {},
): string[] {
  const notes: string[] = [];
  if (nodeArgs && g.nodeArgs.length) notes.push(`${name} ran with node flags: ${g.nodeArgs.join(' ')}`);
  notes.push(...extra);
  if (g.log.warningCount) notes.push(`${name} logged ${g.log.warningCount} warn/error lines: ${JSON.stringify(g.log.byMsg)}`);
  if (stop && stop.code !== 0) notes.push(`${name} exit on SIGTERM: ${JSON.stringify(stop)}`);
  return notes;
}

/** The part of a scenario's result that goes into a combined results file (run.ts --save). */
export interface Summary {
  settings: Record<string, unknown>;
  figures: Record<string, TargetFigures>;
  selfCheck: SelfCheck[];
  ratios?: Record<string, unknown>;
}

export interface ScenarioResult {
  json: Record<string, unknown> & { environment: Environment; notes: string[] };
  section: string;
  printed: string;
  notes: string[];
  passed?: boolean;
  /** Set by rounds scenarios: figures with median/min/max and the self-check. */
  summary?: Summary;
  /** true when a self-check flagged the run as noisy. */
  noisy?: boolean;
}

export interface Scenario {
  title: string;
  intro: string;
  /** Seconds the scenario may take (its own fixed schedule), instead of the budget from the settings. */
  budgetSeconds?: number;
  run(settings: Settings, log: Log): Promise<ScenarioResult>;
}

export const sectionHeading = (started: Date, env: Environment, settingsText: string): string =>
  `## ${started.toISOString()} — node ${env.node}, ${env.cpus} CPUs (load avg ${env.loadAverage[0]}), gateway ${env.gatewayCommit ?? env.gatewayDir}, ${settingsText}`;

export const section = (heading: string, md: string, notes: string[] = []): string =>
  `${heading}\n\n${md}${notes.length ? `\n\n${notes.map((n) => `- ${n}`).join('\n')}` : ''}`;

/**
 * What every scenario returns to run.ts: the JSON record (scenario, date, environment, settings,
 * then `record`'s fields, then the notes), the markdown section, and `more`. Self-check verdicts
 * become notes; a noisy one marks the result.
 */
export function scenarioResult({
  scenario,
  started,
  settingsText,
  settings,
  record,
  md,
  notes = [],
  environmentExtra = {},
  summary,
  passed,
}: {
  scenario: string;
  started: Date;
  settingsText: string;
  settings: Record<string, unknown>;
  record: Record<string, unknown>;
  md: string;
  notes?: string[];
  environmentExtra?: Record<string, unknown>;
  summary?: Summary;
  passed?: boolean;
}): ScenarioResult {
  const env = { ...environment(), ...environmentExtra };
  const checks = summary?.selfCheck ?? [];
  const allNotes = [...checks.map((c) => `self-check ${c.verdict}`), ...notes];
  const noisy = checks.some((c) => c.noisy);
  return {
    json: {
      scenario,
      date: started.toISOString(),
      environment: env,
      settings,
      ...(summary ? { selfCheck: checks, noisy } : {}),
      ...record,
      notes: allNotes,
    },
    section: section(sectionHeading(started, env, settingsText), md, allNotes),
    printed: md,
    notes: allNotes,
    passed,
    summary,
    noisy,
  };
}
