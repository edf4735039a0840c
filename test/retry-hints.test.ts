import { describe, expect, it } from 'vitest';
import { throttleCooldown } from '../src/resilience/cooldown.js';
import { BackendState } from '../src/state/backend-state.js';
import { parseGoDuration, parseRateLimitField, readRetryHint } from '../src/resilience/retry-hints.js';

const NOW = Date.parse('2026-11-23T10:00:00Z');
const policy = { statuses: new Set([429, 503]), defaultCooldown: 10_000, minCooldown: 0, maxCooldown: 300_000 };

describe('retry hints: the most precise one wins', () => {
  it.each([
    [{ 'retry-after-ms': '1500', 'retry-after': '2' }, 1500, 'retry-after-ms'],
    [{ 'x-ms-retry-after-ms': '250', 'retry-after': '1' }, 250, 'x-ms-retry-after-ms'],
    [{ 'retry-after-ms': '12.5' }, 12.5, 'retry-after-ms'],
    [{ 'retry-after': '7' }, 7000, 'retry-after'],
    [{ 'retry-after': '1.5' }, 1500, 'retry-after'],
    [{ 'retry-after': ' 3 ' }, 3000, 'retry-after'],
    [{ 'retry-after': 'Mon, 23 Nov 2026 10:00:30 GMT' }, 30_000, 'retry-after'],
    [{ 'retry-after': 'Monday, 23-Nov-26 10:00:05 GMT' }, 5000, 'retry-after'],
    [{ 'retry-after': 'Mon Nov 23 10:00:20 2026' }, 20_000, 'retry-after'],
    [{ 'retry-after': 'Mon, 23 Nov 2026 09:00:00 GMT' }, 0, 'retry-after'],
    [{ ratelimit: '"default";r=0;t=3' }, 3000, 'ratelimit'],
    [{ ratelimit: '"a";r=0;t=3, "b";r=0;t=9' }, 9000, 'ratelimit'],
    [{ ratelimit: 'limit=10, remaining=0, reset=4' }, 4000, 'ratelimit'],
    [{ 'ratelimit-reset': '6' }, 6000, 'ratelimit-reset'],
    [{ 'x-ratelimit-reset-requests': '1s' }, 1000, 'x-ratelimit-reset-requests'],
    [{ 'x-ratelimit-reset-requests': '250ms', 'x-ratelimit-reset-tokens': '6m0s' }, 360_000, 'x-ratelimit-reset-tokens'],
    [{ 'x-ratelimit-reset-tokens': '1h2m3.5s' }, 3_723_500, 'x-ratelimit-reset-tokens'],
    [{ 'retry-after-ms': ['800', '900'] }, 800, 'retry-after-ms'],
  ])('%j → %d ms from %s', (headers, delayMs, source) => {
    const hint = readRetryHint(headers, NOW);
    expect(hint?.source).toBe(source);
    expect(hint?.delayMs).toBeCloseTo(delayMs, 5);
  });

  it.each([
    [{ 'retry-after-ms': 'soon', 'retry-after': '2' }, 2000],
    [{ 'retry-after-ms': '-5', 'x-ms-retry-after-ms': '40' }, 40],
    [{ 'retry-after': 'tomorrow-ish', 'x-ratelimit-reset-requests': '2s' }, 2000],
    [{ 'retry-after': '1e3' }, undefined],
    [{ 'retry-after': '-1' }, undefined],
    [{ 'retry-after': '' }, undefined],
    [{ 'retry-after': 'Fri, 99 Foo 2026 99:99:99 GMT' }, undefined],
    [{ ratelimit: 't=abc' }, undefined],
    [{ 'x-ratelimit-reset-tokens': '5 minutes' }, undefined],
    [{ 'x-ratelimit-reset-tokens': 'm' }, undefined],
    [{ 'retry-after-ms': 'x'.repeat(10_000) }, undefined],
    [{}, undefined],
  ])('malformed hints count as absent: %j', (headers, delayMs) => {
    expect(readRetryHint(headers as Record<string, string>, NOW)?.delayMs).toBe(delayMs);
  });

  it('parses Go durations as OpenAI sends them', () => {
    expect(parseGoDuration('6m0s')).toBe(360_000);
    expect(parseGoDuration('20ms')).toBe(20);
    expect(parseGoDuration('1.5s')).toBe(1500);
    expect(parseGoDuration('2h')).toBe(7_200_000);
    expect(parseGoDuration('')).toBeUndefined();
    expect(parseGoDuration('10')).toBeUndefined();
    expect(parseRateLimitField('"x";r=5')).toBeUndefined();
  });
});

describe('cooldown decisions', () => {
  it('429 without a hint cools down for defaultCooldown', () => {
    expect(throttleCooldown(429, {}, policy, NOW)).toMatchObject({ delayMs: 10_000, source: 'default', until: NOW + 10_000 });
  });

  it('503 cools down only when it carries a hint; a bare 503 is a failure, not throttling', () => {
    expect(throttleCooldown(503, {}, policy, NOW)).toBeUndefined();
    expect(throttleCooldown(503, { 'retry-after': '2' }, policy, NOW)).toMatchObject({ delayMs: 2000 });
    expect(throttleCooldown(500, { 'retry-after': '2' }, policy, NOW)).toBeUndefined();
    expect(throttleCooldown(200, { 'retry-after': '2' }, policy, NOW)).toBeUndefined();
  });

  it('clamps to [minCooldown, maxCooldown]', () => {
    const clamped = { ...policy, minCooldown: 1000, maxCooldown: 60_000 };
    expect(throttleCooldown(429, { 'retry-after-ms': '5' }, clamped, NOW)?.delayMs).toBe(1000);
    expect(throttleCooldown(429, { 'retry-after': '3600' }, clamped, NOW)?.delayMs).toBe(60_000);
  });

  it('a cooldown is only ever extended, never shortened', () => {
    const state = new BackendState('llm http://a');
    expect(state.coolDownUntil(NOW + 5000, 'retry-after', '5', NOW)).toBe(true);
    expect(state.coolDownUntil(NOW + 1000, 'retry-after', '1', NOW)).toBe(false);
    expect(state.cooldownUntil).toBe(NOW + 5000);
    expect(state.coolDownUntil(NOW + 8000, 'retry-after', '8', NOW)).toBe(true);
    expect(state.cooldownUntil).toBe(NOW + 8000);
    expect(state.isCooling(NOW + 7999)).toBe(true);
    expect(state.isCooling(NOW + 8000)).toBe(false);
  });
});
