import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from './helpers/gateway.js';
import { expectCheckPasses } from './helpers/config.js';

describe('config/azure-openai.yaml', () => {
  const file = join(ROOT, 'config/azure-openai.yaml');

  it('passes spillway check with the keys in the environment', async () => {
    await expectCheckPasses(file, { EASTUS_KEY: 'k1', WESTUS_KEY: 'k2', OPENAI_KEY: 'k3', CLIENT_KEY: 'k4' });
  });

  it('names each missing key variable instead of starting without it', async () => {
    // empty counts as unset
    const result = await runCli(['check', '--config', file], { EASTUS_KEY: '', WESTUS_KEY: '', OPENAI_KEY: '', CLIENT_KEY: '' });
    expect(result.code).toBe(1);
    for (const name of ['EASTUS_KEY', 'WESTUS_KEY', 'OPENAI_KEY', 'CLIENT_KEY'])
      expect(result.stderr).toContain(`environment variable ${name} is not set`);
  });
});
