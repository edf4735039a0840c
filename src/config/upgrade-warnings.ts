// Warnings for configs whose meaning changed in this release (CHANGELOG "Upgrade notes"), so
// `spillway check` points at the lines an upgrade affects.

import type { GatewayConfig } from './schema/index.js';

export interface UpgradeWarning {
  readonly path: ReadonlyArray<string | number>;
  readonly message: string;
}

export function upgradeWarnings(config: GatewayConfig): UpgradeWarning[] {
  const warnings: UpgradeWarning[] = [];
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const retry = upstream.retry;
    if (retry === undefined || retry === false || retry === 'off') continue;
    if (!retry.on.includes('connect-error'))
      warnings.push({
        path: ['upstreams', name, 'retry', 'on'],
        message:
          'retry.on is now added to the safe retries (connection failures are always retried); use "retry: off" to switch retries off',
      });
  }
  return warnings;
}
