// Starts the gateway for tests: in-process from a YAML string (fast), or as the real CLI.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../src/config/load.js';
import { Gateway, type GatewayOptions } from '../../src/listener/gateway.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { SecretScrubber } from '../../src/telemetry/redact.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'dist/cli/main.js');

/** Collects JSON log lines so tests can assert on decision events. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    callback();
  }
  events(name: string): Array<Record<string, unknown>> {
    return this.lines.filter((line) => line.event === name);
  }
}

export interface TestGateway {
  gateway: Gateway;
  url: string;
  adminUrl: string;
  logs: LogCapture;
  close(): Promise<void>;
}

/** Listener and admin on port 0 unless the YAML says otherwise. */
export async function startGateway(yaml: string, options: GatewayOptions = {}): Promise<TestGateway> {
  const text = /^listen:/m.test(yaml) ? yaml : `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\n${yaml}`;
  const { config } = parseConfigText(text, 'test.yaml', { ...process.env });
  const logs = new LogCapture();
  const scrubber = new SecretScrubber(config);
  const logger = createLogger('info', logs, { headers: config.log.redact, scrubber });
  const gateway = new Gateway(config, { file: 'test.yaml', logger, scrubber, ...options });
  await gateway.listen();
  return { gateway, url: gateway.url, adminUrl: gateway.adminUrl, logs, close: () => gateway.close(1000) };
}

export async function writeTempConfig(yaml: string, name = 'gateway.yaml'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-test-'));
  const file = join(dir, name);
  await writeFile(file, yaml);
  return file;
}

export interface CliGateway {
  child: ChildProcess;
  url: string;
  adminUrl: string;
  lines: Array<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `node dist/cli/main.js --config FILE` and waits for its "spillway listening" line. */
export async function startCli(file: string, env: NodeJS.ProcessEnv = {}): Promise<CliGateway> {
  const child = spawn(process.execPath, [CLI, '--config', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${stderr}`)), 15_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      lines.push(parsed);
      if (parsed.msg === 'spillway listening') {
        clearTimeout(timer);
        resolve(parsed);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}: ${stderr}`));
    });
  });
  const ready = await listening;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    url: String(ready.url),
    adminUrl: String(ready.admin),
    lines,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs the CLI to completion (e.g. `check`) and returns its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
