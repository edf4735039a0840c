// The backend-state bus: locally learnt news goes out once (never echoed back), a peer's news is
// merged by the local rules (later cooldown end wins, clamped to maxCooldown), malformed news is
// dropped, and a probe lease the transports cannot give means "probe here".

import { describe, expect, it } from 'vitest';
import { BackendBus, type BusMessage, type BusTransport, parseBusMessage } from '../../src/state/backend-bus.js';
import { BackendStateRegistry } from '../../src/state/backend-state.js';

function pair() {
  const sent: BusMessage[] = [];
  const registry = new BackendStateRegistry();
  const bus = new BackendBus(registry);
  const transport: BusTransport = { name: 'test', publish: (m) => sent.push(m), close: async () => {} };
  bus.add(transport);
  return { registry, bus, sent, state: registry.get('pool http://a') };
}

describe('backend bus', () => {
  it('publishes a local cooldown as a remaining duration, and only when the end moved', () => {
    const { state, sent } = pair();
    state.coolDownUntil(11_000, 'retry-after-ms', '5000', 6_000);
    state.coolDownUntil(10_000, 'retry-after-ms', '4000', 6_000);
    expect(sent).toEqual([{ t: 'cool', k: state.sharedKey, ms: 5_000, src: 'retry-after-ms', val: '5000' }]);
  });

  it('merges a peer cooldown: later end wins, clamped to maxCooldown, never re-published', () => {
    const { state, bus, sent } = pair();
    state.maxCooldownMs = 3_000;
    expect(bus.apply({ t: 'cool', k: state.sharedKey, ms: 60_000, src: 'retry-after', val: '60' }, 1_000)).toBe(true);
    expect(state.cooldownUntil).toBe(4_000);
    expect(bus.apply({ t: 'cool', k: state.sharedKey, ms: 1_000, src: 'retry-after', val: '1' }, 1_000)).toBe(false);
    expect(state.cooldownUntil).toBe(4_000);
    expect(state.lastCooldown?.source).toBe('peer:retry-after');
    expect(sent).toEqual([]);
  });

  it('clock skew does not move a cooldown: a sender 10 s ahead still gives the receiver 5 s', () => {
    const sender = pair();
    const receiver = pair();
    const receiverNow = 1_000_000;
    const senderNow = receiverNow + 10_000; // its wall clock runs 10 s ahead
    sender.state.coolDownUntil(senderNow + 5_000, 'retry-after-ms', '5000', senderNow);
    receiver.bus.apply(sender.sent[0]!, receiverNow);
    expect(receiver.state.cooldownUntil - receiverNow).toBe(5_000);
  });

  it('applies an operator mode from a peer without echo; ignores unknown backends', () => {
    const { state, bus, sent } = pair();
    expect(bus.apply({ t: 'mode', k: state.sharedKey, mode: 'drain' })).toBe(true);
    expect(state.adminMode).toBe('drain');
    expect(state.admits()).toBe(false);
    expect(sent).toEqual([]);
    expect(bus.apply({ t: 'mode', k: 'nobody', mode: 'disable' })).toBe(false);
    state.setMode('active');
    expect(sent).toEqual([{ t: 'mode', k: state.sharedKey, mode: 'active' }]);
  });

  it('shares the capacity learner: "window spent" reaches peers, a peer throttle ends this window too', () => {
    const sender = pair();
    const receiver = pair();
    sender.state.capacity.accepted({ 'x-ratelimit-remaining-requests': '3' }, 1_000);
    sender.state.capacity.accepted({ 'x-ratelimit-remaining-requests': '0' }, 1_010);
    sender.state.capacity.accepted({ 'x-ratelimit-remaining-requests': '0' }, 1_020);
    expect(sender.sent).toEqual([{ t: 'spent', k: sender.state.sharedKey }]);
    receiver.bus.apply(sender.sent[0]!, 5_000);
    expect(receiver.state.capacity.spent(0, 5_100)).toBe(true);
    expect(receiver.state.capacity.spent(0, 6_100)).toBe(false);
    // This gateway had 7 answers accepted when a peer's 429 came: its share of the window is 7.
    for (let i = 0; i < 7; i++) receiver.state.capacity.accepted(undefined, 7_000);
    receiver.bus.apply({ t: 'cool', k: receiver.state.sharedKey, ms: 1_000, src: 'retry-after-ms', val: '1000' }, 7_000);
    expect(receiver.state.capacity.lastWindow).toBe(7);
    // An extension of a cooldown already known here is not a new window.
    receiver.bus.apply({ t: 'cool', k: receiver.state.sharedKey, ms: 2_000, src: 'retry-after-ms', val: '2000' }, 7_100);
    expect(receiver.state.capacity.lastWindow).toBe(7);
  });

  it('drops malformed peer messages', () => {
    expect(parseBusMessage({ t: 'cool', k: 'x', ms: 'soon', src: 'a', val: 'b' })).toBeUndefined();
    expect(parseBusMessage({ t: 'mode', k: 'x', mode: 'explode' })).toBeUndefined();
    expect(parseBusMessage({ t: 'open', k: 'x', ms: Number.POSITIVE_INFINITY })).toBeUndefined();
    expect(parseBusMessage(null)).toBeUndefined();
    expect(parseBusMessage({ t: 'probe', k: 'x', ok: false, err: 'status 503' })).toEqual({
      t: 'probe',
      k: 'x',
      ok: false,
      err: 'status 503',
    });
  });

  it('asks the transports for a probe lease; a failing transport means probe here', async () => {
    const { registry, bus } = pair();
    const state = registry.get('pool http://b');
    expect(await registry.probeGate!(state, 1_000)).toBe(true);
    bus.add({ name: 'held', publish: () => undefined, lease: async () => false, close: async () => {} });
    expect(await registry.probeGate!(state, 1_000)).toBe(false);
    const failing = pair();
    failing.bus.add({ name: 'down', publish: () => undefined, lease: () => Promise.reject(new Error('down')), close: async () => {} });
    expect(await failing.registry.probeGate!(failing.state, 1_000)).toBe(true);
  });
});
