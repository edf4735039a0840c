// Hot reload: on a change of the config file (watch), SIGHUP or POST /admin/reload, the file is
// parsed, validated and compiled off to the side; only a valid config is swapped in (one
// reference). Requests in flight finish on the snapshot they started with. An invalid file is
// rejected with its file:line errors — logged, returned, counted — and the old config keeps
// serving. Reloads run one at a time.

import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError, formatIssue, type ConfigIssue } from '../config/errors.js';
import { parseConfigText, type LoadedConfig } from '../config/load.js';
import type { GatewayConfig } from '../config/schema/index.js';
import type { Logger } from 'pino';
import type { ProxyObserver } from './observer.js';
import type { Snapshot } from './snapshot.js';

export type ReloadTrigger = 'startup' | 'watch' | 'SIGHUP' | 'admin' | 'api';

export interface ReloadOutcome {
  result: 'ok' | 'rejected' | 'unchanged';
  trigger: ReloadTrigger;
  file: string;
  at: string;
  durationMs: number;
  /** file:line:column path: message, one per problem */
  errors: string[];
  issues: ConfigIssue[];
  warnings: string[];
  /** sha256 of the file text that was read */
  sha256: string | undefined;
}

export interface ActiveConfig {
  file: string;
  loadedAt: string;
  trigger: ReloadTrigger;
  sha256: string | undefined;
}

export interface ReloadTarget {
  readonly snapshot: Snapshot;
  apply(config: GatewayConfig, file: string): Snapshot;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class ConfigReloader {
  active: ActiveConfig;
  last: ReloadOutcome | undefined;
  readonly counts = { ok: 0, rejected: 0, unchanged: 0 };
  #queue: Promise<unknown> = Promise.resolve();
  #watchers: FSWatcher[] = [];
  #rejectedHash: string | undefined;
  #debounce: NodeJS.Timeout | undefined;
  /** Called after every reload that applied a new config (worker processes tell their siblings). */
  onApplied: ((outcome: ReloadOutcome) => void) | undefined;

  constructor(
    readonly target: ReloadTarget,
    readonly file: string | undefined,
    readonly logger: Logger,
    readonly observer: ProxyObserver,
    source: string | undefined,
  ) {
    this.active = {
      file: file ?? '<inline>',
      loadedAt: target.snapshot.loadedAt.toISOString(),
      trigger: 'startup',
      sha256: source === undefined ? undefined : sha256(source),
    };
  }

  /** Reloads the config file; waits for any reload already running. */
  reload(trigger: ReloadTrigger, options: { skipUnchanged?: boolean } = {}): Promise<ReloadOutcome> {
    const run = this.#queue.then(() => this.#reloadNow(trigger, options.skipUnchanged ?? false));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reloadNow(trigger: ReloadTrigger, skipUnchanged: boolean): Promise<ReloadOutcome> {
    const started = performance.now();
    const file = this.file;
    const outcome = (
      result: ReloadOutcome['result'],
      issues: ConfigIssue[],
      warnings: ConfigIssue[],
      hash: string | undefined,
    ): ReloadOutcome => ({
      result,
      trigger,
      file: file ?? '<inline>',
      at: new Date().toISOString(),
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      errors: issues.map(formatIssue),
      issues,
      warnings: warnings.map(formatIssue),
      sha256: hash,
    });

    if (!file)
      return this.#finish(
        outcome(
          'rejected',
          [{ file: '<inline>', line: 0, column: 0, path: '', message: 'the gateway was not started from a config file' }],
          [],
          undefined,
        ),
      );
    let source: string;
    try {
      source = await readFile(file, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
      return this.#finish(
        outcome('rejected', [{ file, line: 0, column: 0, path: '', message: `cannot read config: ${reason}` }], [], undefined),
      );
    }
    const hash = sha256(source);
    // A watcher sees several events per save: the same text is not reloaded (or rejected) twice.
    if (skipUnchanged && (hash === this.active.sha256 || hash === this.#rejectedHash))
      return this.#finish(outcome('unchanged', [], [], hash));
    let loaded: LoadedConfig;
    try {
      loaded = parseConfigText(source, file);
    } catch (error) {
      this.#rejectedHash = hash;
      const issues =
        error instanceof ConfigError ? error.issues : [{ file, line: 0, column: 0, path: '', message: (error as Error).message }];
      return this.#finish(outcome('rejected', issues, [], hash));
    }

    const previous = this.target.snapshot.config;
    try {
      const snapshot = this.target.apply(loaded.config, file);
      this.active = { file, loadedAt: snapshot.loadedAt.toISOString(), trigger, sha256: hash };
      this.#rejectedHash = undefined;
    } catch (error) {
      // Compile errors are bugs (validation passed); the old snapshot is still in place.
      return this.#finish(
        outcome('rejected', [{ file, line: 0, column: 0, path: '', message: `cannot compile: ${(error as Error).message}` }], [], hash),
      );
    }
    const warnings = [...loaded.warnings];
    // The admin token and metricsToken apply at once; addresses need a restart.
    const bound = (config: GatewayConfig) => ({ listen: config.listen, admin: { host: config.admin.host, port: config.admin.port } });
    for (const key of ['listen', 'admin'] as const) {
      if (JSON.stringify(bound(previous)[key]) !== JSON.stringify(bound(loaded.config)[key])) {
        warnings.push({ file, line: 0, column: 0, path: key, message: `changes to ${key} take effect on restart` });
      }
    }
    // Turning reload.watch on or off in the file takes effect at once.
    if (loaded.config.reload.watch && !previous.reload.watch) this.watch(loaded.config.reload.debounce);
    if (!loaded.config.reload.watch && previous.reload.watch) this.stopWatching();
    return this.#finish(outcome('ok', [], warnings, hash));
  }

  #finish(outcome: ReloadOutcome): ReloadOutcome {
    this.counts[outcome.result]++;
    if (outcome.result === 'unchanged') return outcome;
    this.last = outcome;
    const fields = {
      event: 'config.reload',
      result: outcome.result,
      trigger: outcome.trigger,
      file: outcome.file,
      durationMs: outcome.durationMs,
    };
    if (outcome.result === 'ok') {
      this.logger.info({ ...fields, sha256: outcome.sha256 }, 'config reloaded');
      for (const warning of outcome.warnings) this.logger.warn({ event: 'config.warning', file: outcome.file }, warning);
      this.observer.configReload('ok', `${outcome.trigger}: ${outcome.file}`);
      this.onApplied?.(outcome);
    } else {
      this.logger.error(
        { ...fields, errors: outcome.errors },
        `config reload rejected, the running config keeps serving:\n${outcome.errors.join('\n')}`,
      );
      this.observer.configReload('rejected', outcome.errors.join('\n'));
    }
    return outcome;
  }

  /**
   * Reloads when the file changes. The directory is watched (editors save by replacing the
   * file) and the file itself (in-place writes, e.g. through a single-file bind mount).
   */
  watch(debounceMs: number): void {
    if (!this.file || this.#watchers.length > 0) return;
    const path = resolve(this.file);
    const name = basename(path);
    const changed = () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => void this.reload('watch', { skipUnchanged: true }), debounceMs);
      this.#debounce.unref();
    };
    const add = (target: string, filter: (file: string | null) => boolean) => {
      try {
        const watcher = watch(target, { persistent: false }, (_event, file) => {
          if (filter(file)) changed();
        });
        watcher.on('error', () => undefined);
        this.#watchers.push(watcher);
      } catch (error) {
        this.logger.warn({ err: error, file: target }, 'cannot watch the config file; SIGHUP and POST /admin/reload still work');
      }
    };
    add(dirname(path), (file) => file === null || file === name);
    add(path, () => true);
  }

  stopWatching(): void {
    clearTimeout(this.#debounce);
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
  }
}
