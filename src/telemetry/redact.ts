// Keeps secrets out of every log line. Two layers:
//  - by key: header-like fields (authorization, cookies, API keys, and log.redact names) are
//    replaced wherever they appear up to three levels deep (pino redact paths);
//  - by value: the config's secrets (the fields its schema marks, and URL credentials — the same
//    redaction the admin views use, config/redact.ts) are replaced in the finished line,
//    whatever field carries them.

import { configSecrets, REDACTED } from '../config/redact.js';
import type { GatewayConfig } from '../config/schema/index.js';

/** The same marker as the admin views use. */
export const CENSOR = REDACTED;

/** Header and field names whose values are never logged. */
export const ALWAYS_REDACTED = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'api-key',
  'x-api-key',
  'x-goog-api-key',
  'ocp-apim-subscription-key',
  'x-auth-token',
];

/** pino redact paths for the given field names, at the top level and one to three levels down. */
export function redactPaths(names: readonly string[]): string[] {
  const paths: string[] = [];
  for (const name of new Set(names.map((n) => n.toLowerCase()))) {
    const key = /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
    const top = key.startsWith('.') ? key.slice(1) : key;
    paths.push(top, `*${key}`, `*.*${key}`, `*.*.*${key}`);
  }
  return paths;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Replaces configured secret values in finished log lines; updated on every config reload. */
export class SecretScrubber {
  #pattern: RegExp | undefined;

  constructor(config?: GatewayConfig) {
    if (config) this.update(config);
  }

  update(config: GatewayConfig): void {
    const secrets = configSecrets(config).sort((a, b) => b.length - a.length);
    // A secret appears in a JSON line JSON-escaped: match that form too.
    const forms = new Set<string>();
    for (const secret of secrets) {
      forms.add(secret);
      forms.add(JSON.stringify(secret).slice(1, -1));
    }
    this.#pattern = forms.size > 0 ? new RegExp([...forms].map(escapeRegExp).join('|'), 'g') : undefined;
  }

  scrub(line: string): string {
    const pattern = this.#pattern;
    if (!pattern) return line;
    pattern.lastIndex = 0;
    return pattern.test(line) ? line.replace(pattern, CENSOR) : line;
  }
}

const SENSITIVE_QUERY =
  /^(api[-_]?key|key|code|token|access[-_]?token|id[-_]?token|refresh[-_]?token|sig|signature|secret|password|client[-_]?secret|auth)$/i;

/** The request target for a log line, with the values of credential-like query parameters hidden. */
export function redactTarget(target: string): string {
  const queryAt = target.indexOf('?');
  if (queryAt === -1) return target;
  const query = target
    .slice(queryAt + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq === -1) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        /* keep raw */
      }
      return SENSITIVE_QUERY.test(name) ? `${pair.slice(0, eq)}=${CENSOR}` : pair;
    });
  return `${target.slice(0, queryAt)}?${query.join('&')}`;
}
