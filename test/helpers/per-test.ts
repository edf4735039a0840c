// The gateway and backends a test starts, closed after each test so none outlives it.

import { afterEach } from 'vitest';
import { closeAll, type TestBackend } from './backend.js';
import type { TestGateway } from './gateway.js';

export interface PerTest {
  gateway: TestGateway | undefined;
  backend: TestBackend | undefined;
  backends: TestBackend[];
}

/**
 * Call at the top of a test file (or describe): registers an afterEach that closes and clears what
 * a test put here, then runs `alsoAfter` (the file's own clean-up, after the gateway is closed).
 */
export function perTest(alsoAfter?: () => void | Promise<void>): PerTest {
  const live: PerTest = { gateway: undefined, backend: undefined, backends: [] };
  afterEach(async () => {
    await closeAll(live.gateway, live.backend, ...live.backends);
    live.gateway = undefined;
    live.backend = undefined;
    live.backends = [];
    await alsoAfter?.();
  });
  return live;
}
