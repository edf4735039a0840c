// The demo's three simulated Azure OpenAI deployments as a standalone server, for
// deploy/docker-compose.yml (a node:24-slim container that mounts demo/ and runs this file with
// Node's type stripping; the gateway image does not ship demo/). Ports 9001-9003 on
// BACKENDS_HOST (default 0.0.0.0); budgets per second from BUDGETS (default "5,5,10").

import { startSimulatedBackend } from './backends.ts';

const host = process.env.BACKENDS_HOST ?? '0.0.0.0';
const budgets = (process.env.BUDGETS ?? '5,5,10').split(',').map(Number);
const names = ['primary-a', 'primary-b', 'spillover'];

const backends = await Promise.all(
  names.map((name, i) => startSimulatedBackend({ name, host, port: 9001 + i, budgetPerSecond: budgets[i] ?? 5 })),
);
for (const backend of backends) process.stdout.write(`${backend.name} listening on ${backend.url}\n`);
const stop = () => void Promise.all(backends.map((b) => b.close())).then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
