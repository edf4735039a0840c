// Nothing lost when things break, end to end with real processes (the bench scenarios, shorter):
// two origins under ~1,000 req/s of GETs with the default config — SIGKILL, restart, graceful stop,
// restart — then a chaos run of origins and Redis killed and restarted under mixed traffic.

import { describe, expect, it } from 'vitest';
import { run as backendLoss } from '../../bench/scenarios/backend-loss.ts';
import { chaos } from '../../bench/scenarios/chaos.ts';
import type { Settings } from '../../bench/lib/rounds.ts';

const log = (line: string) => console.log(`  ${line}`);

describe('nothing lost when things break', () => {
  it('two backends at 1000 req/s GET, default config: kill, restart, graceful stop, restart → 0 failed requests per phase', async () => {
    const result = await backendLoss({} as Settings, log);
    const phases = result.json.phases as Array<{ phase: string; sent: number; failed: number; statuses: Record<string, number> }>;
    console.log(result.printed);
    for (const phase of phases) {
      expect(phase.sent, phase.phase).toBeGreaterThan(1_000);
      expect(phase.failed, `${phase.phase}: ${JSON.stringify(phase.statuses)}`).toBe(0);
    }
    const served = result.json.restartedServed as { a: number; b: number };
    expect(served.a).toBeGreaterThan(0);
    expect(served.b).toBeGreaterThan(0);
  }, 90_000);

  it('chaos (20 s): origins and Redis killed and restarted, a reload → no GET failed, every keyed POST answered, none applied twice', async () => {
    const { figures } = await chaos(20, log);
    console.log(JSON.stringify({ ...figures, events: figures.events.length }));
    expect(figures.gets).toBeGreaterThan(3_000);
    expect(figures.posts).toBeGreaterThan(1_000);
    expect(figures.getFailures).toEqual({});
    expect(figures.postsNeverAnswered).toBe(0);
    expect(figures.keysApplied).toBe(figures.posts);
    expect(figures.keysAppliedTwice).toBe(0);
    expect(figures.gatewayRestarts + figures.gatewayErrors).toBe(0);
    expect(figures.events.some((e) => e.what.startsWith('redis killed'))).toBe(true);
    expect(figures.events.some((e) => e.what.startsWith('config reloaded (200)'))).toBe(true);
  }, 120_000);
});
