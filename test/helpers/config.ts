// Config assertions shared by the *-config tests: the issues a YAML text is rejected with, and
// "this file passes `spillway check`".

import { expect } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../src/config/errors.js';
import { parseConfigText } from '../../src/config/load.js';
import { runCli } from './gateway.js';

/** The issues `yaml` is rejected with; throws if it is accepted. */
export function issuesOf(yaml: string, env: NodeJS.ProcessEnv = {}): ConfigIssue[] {
  try {
    parseConfigText(yaml, 'gateway.yaml', env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('config was accepted');
}

/** Runs `spillway check --config FILE` and expects exit code 0 and nothing on stderr. */
export async function expectCheckPasses(file: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const result = await runCli(['check', '--config', file], env);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}
