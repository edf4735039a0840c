// Config assertions shared by the *-config tests: the issues a YAML text is rejected with, and
// "this file passes `spillway check`".

import { expect } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../src/config/errors.js';
import { parseConfigText } from '../../src/config/load.js';
import { runCli } from './gateway.js';

/** The issues `yaml` is rejected with, or undefined if it is accepted. */
function rejection(yaml: string, env: NodeJS.ProcessEnv): ConfigIssue[] | undefined {
  try {
    parseConfigText(yaml, 'gateway.yaml', env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  return undefined;
}

/** The issues `yaml` is rejected with; throws if it is accepted. */
export function issuesOf(yaml: string, env: NodeJS.ProcessEnv = {}): ConfigIssue[] {
  const issues = rejection(yaml, env);
  if (issues === undefined) throw new Error('config was accepted');
  return issues;
}

/** The issues `yaml` is rejected with; none if it is accepted. */
export function issuesIfAny(yaml: string, env: NodeJS.ProcessEnv = {}): ConfigIssue[] {
  return rejection(yaml, env) ?? [];
}

/** Runs `spillway check --config FILE` and expects exit code 0 and nothing on stderr. */
export async function expectCheckPasses(file: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const result = await runCli(['check', '--config', file], env);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}
