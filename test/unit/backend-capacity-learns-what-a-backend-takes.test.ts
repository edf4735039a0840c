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
});
