// The gateway and backends a test starts, closed after each test so none outlives it.

import { afterEach } from 'vitest';
import { closeAll, type TestBackend } from './backend.js';
import type { TestGateway } from './gateway.js';

export interface PerTest {
  gateway: TestGateway | undefined;
  backend: TestBackend | undefined;
  backends: TestBackend[];
}

/** Call at the top of a test file (or describe): registers an afterEach that closes and clears what a test put here. */
export function perTest(): PerTest {
  const live: PerTest = { gateway: undefined, backend: undefined, backends: [] };
  afterEach(async () => {
    await closeAll(live.gateway, live.backend, ...live.backends);
    live.gateway = undefined;
    live.backend = undefined;
    live.backends = [];
  });
  return live;
}
