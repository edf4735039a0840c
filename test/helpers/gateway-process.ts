// Starts the built gateway as its own process: `node [nodeArgs] <dir>/dist/cli/main.js --config <yaml file>`,
// waits for its "spillway listening" log line, reads its ports from it, and stops it with SIGTERM
// (then SIGKILL after a grace period).
//
// Shared by the vitest tests and the bench (bench/, run by Node 24 directly with type stripping), so
// this file uses erasable TypeScript only (no enums, namespaces or parameter properties) and
// imports nothing but node: modules.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Package root of this checkout. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface GatewayProcessOptions {
  /** YAML text of the config (written to a temp file, removed when the gateway exits)… */
  yaml?: string;
  /** …or the path of an existing config file. */
  configPath?: string;
  /** Checkout whose dist/cli/main.js to run (default: this one). Also the gateway's cwd. */
  gatewayDir?: string;
  /** Node executable (default: the current one). */
  execPath?: string;
  /** Extra node flags before the script, e.g. ['--import', 'file:///…/probe.ts']. */
  nodeArgs?: string[];
  /** Added on top of process.env. */
  env?: Record<string, string | undefined>;
  /** Open an IPC channel (stdio fd 3) to the gateway; a preload module can then talk to the parent. */
  ipc?: boolean;
  /** Milliseconds to wait for the listening line (default 20 s). */
  readyTimeoutMs?: number;
  /** Name used in error messages (default "spillway"). */
  label?: string;
  /** Called with every stdout line (the gateway's JSON log). */
  onLine?: (line: string) => void;
  /** Keep at most this many warn/error lines (default 50). */
  keepWarnings?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StopInfo extends ExitInfo {
  /** true when SIGTERM was not enough and SIGKILL was sent. */
  forced: boolean;
}

export interface GatewayLogStats {
  lines: number;
  bytes: number;
  warningCount: number;
  /** The first warn/error lines (up to keepWarnings). */
  warnings: string[];
  /** warn/error lines counted by their msg. */
  byMsg: Record<string, number>;
}

export interface GatewayProcess {
  child: ChildProcess;
  pid: number;
  /** Listener base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Admin base URL, if the config has an admin listener. */
  admin: string | undefined;
  /** The parsed "spillway listening" log line. */
  listening: Record<string, unknown>;
  configPath: string;
  configText: string | undefined;
  nodeArgs: string[];
  log: GatewayLogStats;
  /** Last 8 kB of stderr. */
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL after graceMs (default 5 s). */
  stop(graceMs?: number): Promise<StopInfo>;
}

/** Pino levels warn (40) and worse. */
const WARN_OR_WORSE = /"level":(4\d|5\d|6\d)[,}]/;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The CLI script of a checkout: <dir>/dist/cli/main.js. */
export function gatewayCli(gatewayDir: string = PACKAGE_ROOT): string {
  return resolve(gatewayDir, 'dist', 'cli', 'main.js');
}

export async function startGatewayProcess(opts: GatewayProcessOptions): Promise<GatewayProcess> {
  const label = opts.label ?? 'spillway';
  const gatewayDir = resolve(opts.gatewayDir ?? PACKAGE_ROOT);
  const cli = gatewayCli(gatewayDir);
  if (!existsSync(cli)) throw new Error(`${label}: ${cli} does not exist: run "npm run build" in ${gatewayDir} first`);
  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000;
  const keepWarnings = opts.keepWarnings ?? 50;

  let tempDir: string | undefined;
  let configPath = opts.configPath;
  if (configPath === undefined) {
    if (opts.yaml === undefined) throw new Error(`${label}: pass yaml or configPath`);
    tempDir = mkdtempSync(join(tmpdir(), 'spillway-gw-'));
    configPath = join(tempDir, 'gateway.yaml');
    writeFileSync(configPath, opts.yaml);
  }
  const nodeArgs = [...(opts.nodeArgs ?? [])];
  const child = spawn(opts.execPath ?? process.execPath, [...nodeArgs, cli, '--config', configPath], {
    cwd: gatewayDir,
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((done) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
      done(exitInfo);
    });
  });
  // A failed spawn emits 'error' (and maybe no 'exit'): surface it through `exited`.
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`${label}: ${err.message}`))));
  spawnFailed.catch(() => undefined);

  const log: GatewayLogStats = { lines: 0, bytes: 0, warningCount: 0, warnings: [], byMsg: {} };
  let stderr = '';
  let pending = '';
  let onListening: (entry: Record<string, unknown>) => void = () => undefined;
  const listening = new Promise<Record<string, unknown>>((done) => (onListening = done));
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (text: string) => {
    // Drained for the whole life of the process: a full pipe would stall the gateway.
    log.bytes += text.length;
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      log.lines++;
      opts.onLine?.(line);
      if (line.includes('"spillway listening"')) {
        try {
          onListening(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* not JSON: ignore */
        }
      }
      if (WARN_OR_WORSE.test(line)) {
        log.warningCount++;
        if (log.warnings.length < keepWarnings) log.warnings.push(line.slice(0, 2_000));
        const msg = /"msg":"([^"]{0,200})"/.exec(line)?.[1] ?? '(no msg)';
        log.byMsg[msg] = (log.byMsg[msg] ?? 0) + 1;
      }
    }
    if (pending.length > 100_000) pending = '';
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    stderr = (stderr + text).slice(-8_000);
  });

  const stop = async (graceMs = 5_000): Promise<StopInfo> => {
    if (exitInfo) return { ...exitInfo, forced: false };
    child.kill('SIGTERM');
    const first = await Promise.race([exited, sleep(graceMs).then(() => 'timeout' as const)]);
    if (first !== 'timeout') return { ...first, forced: false };
    child.kill('SIGKILL');
    return { ...(await exited), forced: true };
  };

  let timer: NodeJS.Timeout | undefined;
  try {
    const entry = await Promise.race([
      listening,
      spawnFailed,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${label}: no "spillway listening" line after ${readyTimeoutMs} ms\nstderr: ${stderr}`)),
          readyTimeoutMs,
        );
      }),
      exited.then((info): never => {
        throw new Error(`${label}: exited before listening (${JSON.stringify(info)})\nstderr: ${stderr}`);
      }),
    ]);
    if (typeof entry.url !== 'string') throw new Error(`${label}: listening line has no url: ${JSON.stringify(entry)}`);
    return {
      child,
      pid: child.pid!,
      url: entry.url,
      admin: typeof entry.admin === 'string' ? entry.admin : undefined,
      listening: entry,
      configPath,
      configText: opts.yaml,
      nodeArgs,
      log,
      stderr: () => stderr,
      exited,
      stop,
    };
  } catch (err) {
    await stop(1_000);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
