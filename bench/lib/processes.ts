// The bench's child processes: every target (origin, spillway, @fastify/http-proxy, simulated
// backends, OTLP sink, redis) runs in its own process, apart from autocannon (in the bench process).
// Every child is tracked and killed (by pid) on exit, error, Ctrl-C or watchdog.

import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startGatewayProcess, type GatewayProcess, type StopInfo } from '../../test/helpers/gateway-process.ts';
import { BENCH_DIR, HOST, ROOT, benchUrl, gatewayTarget } from './paths.ts';
import { sleep } from './load.ts';

const GUARD = benchUrl('preload/guard.ts');
const PROBE = benchUrl('preload/probe.ts');

/** Every child still running: killAll() SIGKILLs them. */
const children = new Set<ChildProcess>();
/** Grandchildren that outlive a SIGKILLed parent (nginx's worker): killAll() SIGKILLs them too. */
const orphans = new Set<number>();

/** Registers a grandchild pid for killAll(); returns a function that forgets it. */
export function trackPid(pid: number): () => void {
  orphans.add(pid);
  return () => orphans.delete(pid);
}

/** Tracks a spawned child: killAll() SIGKILLs it while it runs; resolves with its exit. */
export function track(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  children.add(child);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
}

/** Last-resort cleanup: SIGKILL every child we started (by pid, never by name). */
export function killAll(): void {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL. */
export async function stopChild(
  child: ChildProcess,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  graceMs = 5_000,
): Promise<StopInfo> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode, forced: false };
  child.kill('SIGTERM');
  const first = await Promise.race([exited, sleep(graceMs).then(() => 'timeout' as const)]);
  if (first !== 'timeout') return { ...first, forced: false };
  child.kill('SIGKILL');
  return { ...(await exited), forced: true };
}

/** What the probe (preload/probe.ts) reports. */
export interface ProbeSnapshot {
  cpuUs: number;
  gcFreed: number;
  heapUsed: number;
  gcs: number;
  gcCostUs: number;
  /** Event-loop delay since the previous snapshot, ms (undefined before the first window). */
  eventLoopP99Ms: number | undefined;
  eventLoopMaxMs: number | undefined;
  at: number;
}

let probeIds = 0;

/** Asks a child that runs preload/probe.ts for a snapshot. */
export function probeSnapshot(child: ChildProcess, timeoutMs = 5_000): Promise<ProbeSnapshot> {
  const id = ++probeIds;
  return new Promise((resolve, reject) => {
    const onMessage = (msg: (ProbeSnapshot & { type?: string; id?: number }) | undefined): void => {
      if (msg?.type === 'probe:snapshot' && msg.id === id) {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(msg);
      }
    };
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`pid ${child.pid}: no probe snapshot after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.send({ type: 'probe:snapshot', id });
  });
}

/** Anything the bench starts and stops. */
export interface Target {
  pid: number;
  child: ChildProcess;
  /** true when preload/probe.ts runs in it (CPU µs and heap bytes over IPC). */
  probed: boolean;
  stop(): Promise<StopInfo>;
}

export interface Forked extends Target {
  ready: Record<string, unknown> & { url: string };
  stderr(): string;
  request<T = Record<string, unknown>>(msg: { type: string }, timeoutMs?: number): Promise<T>;
}

/**
 * Forks one of the bench's child scripts (children/*.ts). The child answers { type: 'ready', ... }
 * over IPC once it listens; `request(msg)` resolves with its next reply of the same type.
 */
export async function forkTarget(
  script: string,
  args: string[] = [],
  { readyTimeoutMs = 15_000, label = script, probe = false } = {},
): Promise<Forked> {
  const child = fork(join(BENCH_DIR, 'children', script), args, {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    execArgv: probe ? ['--import', PROBE] : [],
  });
  const exited = track(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    stderr = (stderr + text).slice(-4_000);
  });
  const ready = await new Promise<Forked['ready']>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: not ready after ${readyTimeoutMs} ms\n${stderr}`)), readyTimeoutMs);
    const onMessage = (msg: { type?: string; message?: string } | undefined): void => {
      if (msg?.type === 'ready') {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(msg as Forked['ready']);
      } else if (msg?.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`${label}: ${msg.message}`));
      }
    };
    child.on('message', onMessage);
    void exited.then((info) => {
      clearTimeout(timer);
      reject(new Error(`${label}: exited before ready (${JSON.stringify(info)})\n${stderr}`));
    });
  });
  return {
    child,
    pid: child.pid!,
    probed: probe,
    ready,
    stderr: () => stderr,
    request<T>(msg: { type: string }, timeoutMs = 5_000): Promise<T> {
      return new Promise((resolve, reject) => {
        const onMessage = (reply: { type?: string } | undefined): void => {
          if (reply?.type === msg.type) {
            clearTimeout(timer);
            child.off('message', onMessage);
            resolve(reply as T);
          }
        };
        const timer = setTimeout(() => {
          child.off('message', onMessage);
          reject(new Error(`${label}: no answer to ${msg.type}`));
        }, timeoutMs);
        child.on('message', onMessage);
        child.send(msg);
      });
    },
    stop: () => stopChild(child, exited),
  };
}

/** Extra node flags for every gateway child (run.ts --gateway-node-options). */
export const gatewayNodeArgs: string[] = [];

export interface Gateway extends Target, Omit<GatewayProcess, 'stop'> {}

/**
 * Starts the built gateway of `gatewayTarget.dir` (`node --import guard --import probe dist/cli/main.js
 * --config <generated yaml>`) through test/helpers/gateway-process.ts and waits for it to listen.
 */
export async function startGateway(
  yaml: string,
  {
    label = 'spillway',
    env = {},
    nodeArgs = [],
    probe = true,
    dir = gatewayTarget.dir,
  }: { label?: string; env?: Record<string, string>; nodeArgs?: string[]; probe?: boolean; dir?: string } = {},
): Promise<Gateway> {
  const gateway = await startGatewayProcess({
    yaml,
    gatewayDir: dir,
    nodeArgs: [...gatewayNodeArgs, ...nodeArgs, '--import', GUARD, ...(probe ? ['--import', PROBE] : [])],
    env,
    ipc: probe,
    label,
  });
  track(gateway.child);
  return {
    ...gateway,
    nodeArgs: [...gatewayNodeArgs, ...nodeArgs],
    probed: probe,
    stop: () => gateway.stop(),
  };
}

/** First lines of every generated gateway config: a comment naming the scenario, listen and admin on free ports. */
export const configHead = (comment: string): string => `# generated by ${comment}
listen: { host: ${HOST}, port: 0 }
admin: { host: ${HOST}, port: 0 }
`;

/**
 * Runs `fn(track)`; every process passed to `track(proc)` is stopped at the end, newest first.
 * `stopInOrder([[name, proc], ...])` stops some earlier and returns their exit info by name.
 */
export async function withTargets<T>(
  fn: (t: {
    track: <P extends { stop(): Promise<StopInfo> }>(proc: P) => P;
    stopInOrder: (pairs: [string, { stop(): Promise<StopInfo> }][]) => Promise<Record<string, StopInfo>>;
  }) => Promise<T>,
): Promise<T> {
  const cleanups: { stop(): Promise<StopInfo> }[] = [];
  const trackProc = <P extends { stop(): Promise<StopInfo> }>(proc: P): P => {
    cleanups.push(proc);
    return proc;
  };
  const stopInOrder = async (pairs: [string, { stop(): Promise<StopInfo> }][]): Promise<Record<string, StopInfo>> => {
    const stops: Record<string, StopInfo> = {};
    for (const [name, proc] of pairs) {
      stops[name] = await proc.stop();
      const at = cleanups.indexOf(proc);
      if (at >= 0) cleanups.splice(at, 1);
    }
    return stops;
  };
  try {
    return await fn({ track: trackProc, stopInOrder });
  } finally {
    for (const proc of cleanups.reverse()) await proc.stop();
  }
}
