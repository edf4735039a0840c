// The root `redis` section: how to reach Redis (one node, a cluster or sentinels), its timeouts and
// breaker. Rate limits, shared backend state, the cache and idempotency records all use it.

import { z } from 'zod';
import { duration } from './units.js';
import { secret } from './secret.js';

export const redisSchema = z
  .strictObject({
    url: secret(z.string().regex(/^rediss?:\/\//, { message: 'expected a redis:// or rediss:// URL' }), 'url').optional(),
    cluster: z
      .array(secret(z.string().min(1), 'url'))
      .min(1)
      .optional()
      .meta({ description: 'Cluster seed nodes: "host:port" or redis:// URLs.' }),
    sentinels: z
      .array(secret(z.string().min(1), 'url'))
      .min(1)
      .optional()
      .meta({ description: 'Redis Sentinel nodes ("host:port" or redis:// URLs); with `name`, the master they watch.' }),
    name: z.string().min(1).optional().meta({ description: 'With `sentinels`: the master group name the sentinels monitor.' }),
    keyPrefix: z.string().default('spillway:'),
    onRedisError: z
      .enum(['open', 'closed', 'local'])
      .default('local')
      .meta({ description: 'When Redis fails: open (allow), closed (503), local (an in-process bucket per replica).' }),
    commandTimeout: duration
      .default(50)
      .refine((ms) => ms >= 1 && ms <= 60_000, { message: 'commandTimeout must be between 1ms and 60s' })
      .meta({
        description:
          'Redis is slow when the gateway has waited this long for a limiter reply with nothing else to do (time its own event loop is busy does not count): a Redis failure for the breaker; the checks already sent keep waiting up to hardTimeout.',
      }),
    hardTimeout: duration
      .optional()
      .refine((ms) => ms === undefined || (ms >= 1 && ms <= 60_000), { message: 'hardTimeout must be between 1ms and 60s' })
      .meta({
        description:
          'The hard bound: no request waits longer than this (wall clock) for a limiter reply, however busy the gateway is. Default: 500ms, or commandTimeout when that is longer.',
      }),
    connectTimeout: duration.default(1_000),
    breaker: z
      .strictObject({
        failures: z
          .number()
          .int()
          .positive()
          .max(1_000)
          .default(3)
          .meta({ description: 'Consecutive Redis failures that open the breaker.' }),
        cooldown: duration.default(500).meta({ description: 'How long the breaker stays open before one probe goes to Redis again.' }),
      })
      .prefault({}),
    shareState: z.boolean().default(true).meta({
      description:
        'Share backend state (cooldowns, breaker openings, health-check results, drain/disable) with every replica on this Redis: pub/sub plus stored keys. false: each replica keeps its own picture.',
    }),
  })
  .refine((redis) => [redis.url, redis.cluster, redis.sentinels].filter((v) => v !== undefined).length === 1, {
    message: 'set exactly one of redis.url, redis.cluster and redis.sentinels',
  })
  .refine((redis) => (redis.sentinels === undefined) === (redis.name === undefined), {
    message: 'redis.sentinels and redis.name go together (name: the master group the sentinels monitor)',
    path: ['name'],
  })
  .refine((redis) => redis.hardTimeout === undefined || redis.hardTimeout >= redis.commandTimeout, {
    message: 'redis.hardTimeout must be at least redis.commandTimeout',
    path: ['hardTimeout'],
  })
  .transform((redis) => ({ ...redis, hardTimeout: redis.hardTimeout ?? Math.max(500, redis.commandTimeout) }));

export type RedisConfig = z.output<typeof redisSchema>;
