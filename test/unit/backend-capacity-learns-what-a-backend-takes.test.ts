// The learner of backend capacity (src/state/backend-capacity.ts): what a backend accepted in its
// last window before it throttled, or what its x-ratelimit-* headers say, is what it can take now.

import { describe, expect, it } from 'vitest';
import { BackendCapacity } from '../../src/state/backend-capacity.js';

describe('backend capacity learner', () => {
  it('knows nothing until the backend throttled or told', () => {
    const capacity = new BackendCapacity();
    for (let i = 0; i < 10; i++) capacity.accepted();
    expect(capacity.allowance(0)).toBeUndefined();
  });

  it('the count accepted before a throttle is the window; answers and requests in flight use it up', () => {
    const capacity = new BackendCapacity();
    for (let i = 0; i < 300; i++) capacity.accepted();
    capacity.throttled();
    expect(capacity.lastWindow).toBe(300);
    expect(capacity.allowance(0)).toBe(300);
    for (let i = 0; i < 100; i++) capacity.accepted();
    expect(capacity.allowance(50)).toBe(150);
    for (let i = 0; i < 250; i++) capacity.accepted();
    expect(capacity.allowance(0)).toBe(0);
  });

  it('a throttle with nothing accepted still leaves room for one probe', () => {
    const capacity = new BackendCapacity();
    capacity.throttled();
    expect(capacity.allowance(0)).toBe(1);
  });

  it('x-ratelimit-remaining-requests wins over the estimate; x-ratelimit-limit-requests sets the window', () => {
    const capacity = new BackendCapacity();
    capacity.accepted({ 'x-ratelimit-remaining-requests': '42', 'x-ratelimit-limit-requests': '60' });
    expect(capacity.allowance(2)).toBe(40);
    capacity.throttled({ 'x-ratelimit-limit-requests': '60' });
    expect(capacity.allowance(0)).toBe(60);
    capacity.accepted({ 'x-ratelimit-remaining-requests': 'nonsense' });
    expect(capacity.allowance(0)).toBe(59);
  });

  it('spent: the backend said, recently, that what is in flight takes all it has left', () => {
    const capacity = new BackendCapacity();
    expect(capacity.spent(0, 1_000)).toBe(false);
    capacity.accepted({ 'x-ratelimit-remaining-requests': '2' }, 1_000);
    expect(capacity.spent(1, 1_100)).toBe(false);
    expect(capacity.spent(2, 1_100)).toBe(true);
    // A second later the statement is stale: the backend may have a new window.
    expect(capacity.spent(2, 2_000)).toBe(false);
  });

  it('more left than before means a new window began: the count since restarts', () => {
    const capacity = new BackendCapacity();
    for (let i = 0; i < 10; i++) capacity.accepted();
    capacity.throttled();
    for (let i = 0; i < 8; i++) capacity.accepted({ 'x-ratelimit-remaining-requests': String(2 - Math.min(i, 2)) });
    expect(capacity.acceptedInWindow).toBe(8);
    capacity.accepted({ 'x-ratelimit-remaining-requests': '299' });
    expect(capacity.acceptedInWindow).toBe(1);
  });
});
