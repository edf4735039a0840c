// The bus between replicas, through the Redis the gateway already uses (redis.shareState, on by
// default). One command connection and one subscriber connection (a subscribed connection can
// send nothing else). Every change is stored and published by one script call:
//   <prefix>{bus}:cool:<key>  cooldown, value "source value", expiring (PX) when it ends
//   <prefix>{bus}:open:<key>  breaker opening, expiring when the breaker may half-open
//   <prefix>{bus}:mode:<key>  operator's drain/disable (deleted when enabled again)
//   <prefix>{bus}:lease:<key> which replica probes the backend's health (PX 2 × interval)
// and channel <prefix>bus carries the same news at once. A replica that starts, or whose
// connection comes back, reads the stored keys and writes what it learnt meanwhile: the
// pictures merge (later cooldown end wins). Remaining times come from Redis' own PTTL and travel
// as durations, so the only clock that matters is each host's monotonic rate, not its wall-clock
// offset: skew between hosts does not move a cooldown (network transit, ~1 ms, may add to it).
// The "{bus}" hash tag keeps every key in one Cluster slot, so one script reads them all.
//
// Nothing waits on Redis: publishing is fire-and-forget (the client queues nothing while
// disconnected), and a health-probe lease that does not come within 250 ms means "probe here".

import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { RedisConfig } from '../config/schema/ratelimit.js';
import { createRedisClient } from '../ratelimit/redis-store.js';
import { withTimeout } from '../core/waits.js';
import { type BackendBus, type BusMessage, type BusTransport, parseBusMessage } from './backend-bus.js';
import type { BackendState } from './backend-state.js';

const PUT = `
local op = ARGV[1]
if op == 'extend' then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < tonumber(ARGV[3]) then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
elseif op == 'set' then
  redis.call('SET', KEYS[1], ARGV[2])
elseif op == 'del' then
  redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`;

const READ = `
local out = {}
for _, key in ipairs(KEYS) do
  out[#out + 1] = redis.call('GET', key) or false
  out[#out + 1] = redis.call('PTTL', key)
end
return out`;

const LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

const LEASE_WAIT_MS = 250;

export class RedisBusTransport implements BusTransport {
  readonly name = 'redis';
  /** This replica's id on the bus (its own messages come back on the channel and are skipped). */
  readonly id = randomUUID();
  readonly #client: Redis | Cluster;
  readonly #subscriber: Redis | Cluster;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #bus: BackendBus;
  /** Operator modes set while Redis was unreachable: written (not read) when it is back. */
  readonly #pendingModes = new Set<BackendState>();
  /** Mode news heard on the channel: a counter, and its value at each backend's latest news. */
  #modeNews = 0;
  readonly #modeHeard = new Map<string, number>();
  #synced: Promise<void>;
  #markSynced: () => void = () => undefined;
  #closed = false;

  constructor(config: RedisConfig, bus: BackendBus) {
    this.#bus = bus;
    this.#prefix = config.keyPrefix;
    this.#channel = `${config.keyPrefix}bus`;
    this.#client = createRedisClient(config);
    // Same settings and nodes, its own connection — made the same way, so that with Sentinel it
    // follows a switchover too (a duplicate() would stay on the old master until it is demoted).
    this.#subscriber = createRedisClient(config);
    this.#synced = new Promise((resolve) => {
      this.#markSynced = resolve;
    });
    // Errors surface on commands (or not at all: the bus goes on alone); ioredis logs without a listener.
    this.#client.on('error', () => undefined);
    this.#subscriber.on('error', () => undefined);
    this.#subscriber.on('message', (_channel: string, text: string) => this.#receive(text));
    // Subscribed, then read: news published before the subscription is in the stored keys, and
    // news stored after the read comes on the channel, so nothing falls between the two.
    this.#subscriber.on('ready', () => {
      this.#subscriber.subscribe(this.#channel).then(
        () => this.#read([...this.#bus.states.values()]),
        () => undefined,
      );
    });
    this.#client.on('ready', () => void this.#resync());
  }

  publish(message: BusMessage): void {
    if (this.#closed) return;
    const text = JSON.stringify({ ...message, from: this.id });
    let key: string | undefined;
    let op: 'extend' | 'set' | 'del' | 'none' = 'none';
    let value = '';
    let ms = 0;
    switch (message.t) {
      case 'cool':
        [key, op, value, ms] = [this.#key('cool', message.k), 'extend', `${message.src} ${message.val}`, message.ms];
        break;
      case 'open':
        [key, op, value, ms] = [this.#key('open', message.k), 'extend', '1', message.ms];
        break;
      case 'mode': {
        [key, op, value] = [this.#key('mode', message.k), message.mode === 'active' ? 'del' : 'set', message.mode];
        const state = this.#bus.states.byShared(message.k);
        if (state && this.#client.status !== 'ready') this.#pendingModes.add(state);
        break;
      }
      case 'probe':
      case 'spent':
        break;
    }
    if (op !== 'extend' || ms > 0) void this.#put(key, op, value, ms, text);
  }

  async lease(key: string, intervalMs: number): Promise<boolean> {
    if (this.#client.status !== 'ready') throw new Error('redis not connected');
    const reply = await withTimeout(this.#client.eval(LEASE, 1, this.#key('lease', key), this.id, String(intervalMs * 2)), LEASE_WAIT_MS);
    return reply === 1;
  }

  created(state: BackendState): void {
    if (this.#client.status === 'ready') void this.#read([state]);
  }

  async ready(timeoutMs: number): Promise<void> {
    await withTimeout(this.#synced, timeoutMs).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#markSynced();
    await Promise.all([quit(this.#client), quit(this.#subscriber)]);
  }

  #key(kind: string, key: string): string {
    return `${this.#prefix}{bus}:${kind}:${key}`;
  }

  async #put(key: string | undefined, op: string, value: string, ms: number, text: string): Promise<void> {
    try {
      if (key === undefined) await this.#client.publish(this.#channel, text);
      else await this.#client.eval(PUT, 1, key, op, value, String(Math.max(1, ms)), this.#channel, text);
    } catch {
      // Redis down or refusing: this replica goes on with its own picture; #resync merges later.
    }
  }

  #receive(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    if ((parsed as { from?: unknown }).from === this.id) return;
    const message = parseBusMessage(parsed);
    if (!message) return;
    if (message.t === 'mode') this.#modeHeard.set(message.k, ++this.#modeNews);
    this.#bus.apply(message);
  }

  /** (Re)connected: push what was learnt while apart, then read the shared picture. */
  async #resync(): Promise<void> {
    const states = [...this.#bus.states.values()];
    const now = Date.now();
    for (const state of states) {
      if (state.isCooling(now)) {
        const last = state.lastCooldown;
        this.publish({ t: 'cool', k: state.sharedKey, ms: state.cooldownUntil - now, src: last?.source ?? 'peer', val: last?.value ?? '' });
      }
    }
    for (const state of this.#pendingModes) this.publish({ t: 'mode', k: state.sharedKey, mode: state.adminMode });
    this.#pendingModes.clear();
    await this.#read(states);
    this.#markSynced();
  }

  async #read(states: readonly BackendState[]): Promise<void> {
    if (states.length === 0) return;
    const keys = states.flatMap((state) => ['cool', 'open', 'mode'].map((kind) => this.#key(kind, state.sharedKey)));
    // The reply comes on the command connection, news on the subscriber's: a drain published just
    // after Redis ran this read may be heard first. The read's older "active" must not undo it.
    const newsAtRead = this.#modeNews;
    let reply: unknown;
    try {
      reply = await withTimeout(this.#client.eval(READ, keys.length, ...keys), 1_000);
    } catch {
      return;
    }
    if (!Array.isArray(reply)) return;
    const now = Date.now();
    states.forEach((state, i) => {
      const at = (slot: number) => ({ value: reply[(i * 3 + slot) * 2] as string | null, ttl: Number(reply[(i * 3 + slot) * 2 + 1]) });
      const cool = at(0);
      if (cool.value !== null && cool.ttl > 0) {
        const space = cool.value.indexOf(' ');
        this.#bus.apply(
          { t: 'cool', k: state.sharedKey, ms: cool.ttl, src: cool.value.slice(0, space), val: cool.value.slice(space + 1) },
          now,
        );
      }
      const open = at(1);
      if (open.value !== null && open.ttl > 0) this.#bus.apply({ t: 'open', k: state.sharedKey, ms: open.ttl }, now);
      const mode = at(2);
      if (!this.#pendingModes.has(state) && (this.#modeHeard.get(state.sharedKey) ?? 0) <= newsAtRead) {
        const stored = mode.value ?? 'active';
        const message = parseBusMessage({ t: 'mode', k: state.sharedKey, mode: stored });
        if (message) this.#bus.apply(message, now);
      }
    });
  }
}

async function quit(client: Redis | Cluster): Promise<void> {
  try {
    await withTimeout(client.quit(), 500);
  } catch {
    client.disconnect();
  }
}
