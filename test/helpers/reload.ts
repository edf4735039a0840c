// Hot-reload test helpers: an in-process gateway started from a real file, and steady
// background load that records every failure.

import { writeFile } from 'node:fs/promises';
import { loadConfigFile } from '../../src/config/load.js';
import { Gateway, type GatewayOptions } from '../../src/listener/gateway.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { LogCapture, writeTempConfig, type TestGateway } from './gateway.js';

export const LISTEN = 'listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\n';

export interface FileGateway extends TestGateway {
  file: string;
  rewrite(yaml: string): Promise<void>;
}

export async function startGatewayFromFile(yaml: string, options: GatewayOptions = {}): Promise<FileGateway> {
  const file = await writeTempConfig(LISTEN + yaml);
  const loaded = await loadConfigFile(file);
  const logs = new LogCapture();
  const gateway = new Gateway(loaded.config, { file, source: loaded.source, logger: createLogger('info', logs), ...options });
  await gateway.listen();
  return {
    gateway,
    file,
    url: gateway.url,
    adminUrl: gateway.adminUrl,
    logs,
    close: () => gateway.close(1000),
    rewrite: (next: string) => writeFile(file, LISTEN + next),
  };
}

export interface SteadyLoad {
  stop(): Promise<{ total: number; failures: string[] }>;
}

/** `workers` loops requesting `paths` in turn until stopped; anything but 2xx is a failure. */
export function steadyLoad(base: string, paths: string[], workers = 4): SteadyLoad {
  let running = true;
  let total = 0;
  const failures: string[] = [];
  const loops = Array.from({ length: workers }, async (_, w) => {
    let i = w;
    while (running) {
      const path = paths[i++ % paths.length]!;
      try {
        const response = await fetch(base + path);
        await response.arrayBuffer();
        total++;
        if (response.status >= 300) failures.push(`${path} → ${response.status}`);
      } catch (error) {
        failures.push(`${path} → ${(error as Error).message}`);
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { total, failures };
    },
  };
}
