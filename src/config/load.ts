import { upgradeWarnings } from './upgrade-warnings.js';
import { readFile } from 'node:fs/promises';
import { isNode, isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { ConfigError, formatPath, type ConfigIssue } from './errors.js';
import { protectReferences, resolveReferences } from './env.js';
import { gatewaySchema, type GatewayConfig } from './schema/index.js';
import { listenerWarnings } from './listener-warnings.js';
import { unreachableRuleWarnings } from './unreachable-rules.js';
import { identityWarnings } from './identity-warnings.js';

export interface LoadedConfig {
  file: string;
  config: GatewayConfig;
  /** The text as read, before interpolation (never logged: it may reference secrets only by name). */
  source: string;
  warnings: ConfigIssue[];
}

/** Reads, parses, interpolates and validates a YAML config file. Throws ConfigError with every issue. */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new ConfigError([{ file, line: 0, column: 0, path: '', message: `cannot read config: ${reason}` }]);
  }
  return parseConfigText(source, file, env);
}

/** Parses and validates config text; `file` is used only to name locations in errors. */
export function parseConfigText(source: string, file = '<config>', env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const lineCounter = new LineCounter();
  const { text, references } = protectReferences(source);
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): { line: number; column: number } => {
    if (offset === undefined) return { line: 0, column: 0 };
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };

  const issues: ConfigIssue[] = doc.errors.map((error) => ({
    file,
    ...at(error.pos[0]),
    path: '',
    message: error.message.split('\n')[0]!,
  }));
  if (issues.length > 0) throw new ConfigError(issues);

  const warnings: ConfigIssue[] = doc.warnings.map((warning) => ({
    file,
    ...at(warning.pos[0]),
    path: '',
    message: warning.message.split('\n')[0]!,
  }));

  // ${ENV} interpolation on string scalars, keeping each scalar's position for errors.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string') return;
      const { value, missing, whole } = resolveReferences(node.value, references, env);
      for (const name of missing) {
        issues.push({
          file,
          ...at(node.range?.[0]),
          path: '',
          message: `environment variable ${name} is not set (use \${${name}:-default} for a default)`,
        });
      }
      // An unquoted scalar that is one whole reference takes the type of its value (port: ${PORT}).
      node.value = node.type === 'PLAIN' && whole ? plainScalar(value) : value;
    },
  });
  if (issues.length > 0) throw new ConfigError(issues);

  const raw = withAdminTokenFromEnv(toPlainData(doc, file, at), env);
  const result = gatewaySchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      issues.push({ file, ...locate(doc, issue.path, at), path: formatPath(issue.path), message: issue.message });
    }
    issues.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new ConfigError(issues);
  }
  for (const warning of listenerWarnings(raw, result.data)) {
    warnings.push({ file, ...locate(doc, warning.path, at), path: formatPath(warning.path), message: warning.message });
  }
  for (const warning of unreachableRuleWarnings(result.data.routes)) {
    warnings.push({ file, ...locate(doc, ['routes', warning.index], at), path: `routes[${warning.index}]`, message: warning.message });
  }
  for (const warning of upgradeWarnings(result.data)) {
    warnings.push({ file, ...locate(doc, warning.path, at), path: warning.path.join('.'), message: warning.message });
  }
  for (const warning of identityWarnings(result.data)) {
    warnings.push({ file, ...locate(doc, warning.path, at), path: formatPath(warning.path), message: warning.message });
  }
  return { file, config: result.data, source, warnings };
}

/**
 * The document as plain data. Aliases expand at most 100 times over: a "billion laughs" file
 * (aliases of aliases) is refused as a config error at its first alias instead of eating memory
 * or escaping as the library's ReferenceError.
 */
function toPlainData(doc: Document, file: string, at: (offset: number | undefined) => { line: number; column: number }): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (error) {
    let first: number | undefined;
    visit(doc, {
      Alias(_key, node) {
        first = node.range?.[0];
        return visit.BREAK;
      },
    });
    const reason =
      error instanceof ReferenceError && /alias/i.test(error.message) ? 'aliases expand too many times' : (error as Error).message;
    throw new ConfigError([
      {
        file,
        ...at(first),
        path: '',
        message: `${reason} (a YAML alias bomb?): use each anchor a few times at most`,
      },
    ]);
  }
}

/** SPILLWAY_ADMIN_TOKEN stands in for admin.token when the file sets none (read on every load and reload). */
function withAdminTokenFromEnv(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const token = env.SPILLWAY_ADMIN_TOKEN;
  if (!token || typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const admin = (raw as { admin?: unknown }).admin ?? {};
  if (typeof admin !== 'object' || admin === null || Array.isArray(admin) || 'token' in admin) return raw;
  return { ...raw, admin: { ...admin, token } };
}

function plainScalar(text: string): string | number | boolean {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}

/** Finds the YAML node for a schema path, falling back to the closest existing parent (for missing keys). */
function locate(doc: Document, path: ReadonlyArray<PropertyKey>, at: (offset: number | undefined) => { line: number; column: number }) {
  for (let depth = path.length; depth >= 0; depth--) {
    const keys = path.slice(0, depth) as Array<string | number>;
    const node: unknown = depth === 0 ? doc.contents : doc.getIn(keys, true);
    if (isNode(node) || isScalar(node)) return at(node.range?.[0]);
  }
  return { line: 1, column: 1 };
}
