import { z } from 'zod';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'] as const;

const pathSchema = z.string().startsWith('/', { message: 'a path starts with "/"' });

export const matchSchema = z.strictObject({
  path: pathSchema.default('/').meta({ description: 'Prefix, matched on whole segments: "/api/orders" matches /api/orders and /api/orders/7, not /api/ordersX.' }),
  methods: z.array(z.string().toUpperCase().pipe(z.enum(HTTP_METHODS))).min(1).optional(),
});

export const rewriteSchema = z.strictObject({
  stripPrefix: pathSchema.optional().meta({ description: 'Removed from the start of the path before forwarding.' }),
  addPrefix: pathSchema.optional().meta({ description: 'Added to the start of the path (after stripPrefix): both together replace a prefix.' }),
});

export const routeSchema = z.strictObject({
  name: z.string().min(1).optional(),
  match: matchSchema.prefault({}),
  upstream: z.string().min(1),
  rewrite: rewriteSchema.optional(),
});

export type RouteConfig = z.output<typeof routeSchema>;
