// Whether the admin listener is reachable from other machines, and what `spillway check` and the
// start-up log say about an exposed admin listener that has no token.

import { isIP } from 'node:net';
import type { GatewayConfig } from './schema/index.js';

/** A loopback name or address: localhost, 127.0.0.0/8, ::1 (brackets allowed). */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = name.toLowerCase();
  if (lower === 'localhost') return true;
  const v4 = lower.startsWith('::ffff:') ? lower.slice(7) : lower;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(lower) === 6 && (lower === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(lower) || lower === '0:0:0:0:0:0:0:1');
}

export const ADMIN_TOKEN_HOWTO =
  'set admin.token in the config or the SPILLWAY_ADMIN_TOKEN environment variable (e.g. `docker run -e SPILLWAY_ADMIN_TOKEN=$(openssl rand -hex 32) ...`)';

/** The warning for an admin listener bound beyond loopback without a token, or undefined. */
export function adminExposureWarning(config: GatewayConfig, boundHost = config.admin.host): string | undefined {
  if (config.admin.token !== undefined || isLoopbackHost(boundHost)) return undefined;
  return `the admin listener binds ${boundHost}, not a loopback address, and has no token: every /admin/* request will be answered 401 (/healthz, /readyz and /metrics stay open); ${ADMIN_TOKEN_HOWTO}`;
}
