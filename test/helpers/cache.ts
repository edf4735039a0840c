// A gateway with one cached route in front of a backend whose answers a test scripts per path.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { startBackend, type TestBackend } from './backend.js';
import { startGateway, type TestGateway } from './gateway.js';

export type Script = (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>;

export interface CacheSetup {
  gw: TestGateway;
  backend: TestBackend;
  /** Backend calls so far for a path (with query). */
  calls(url?: string): number;
  get(path: string, headers?: Record<string, string>, method?: string, body?: string): Promise<Answer>;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: string;
  cacheStatus: string;
  age: number | undefined;
}

export async function fetchAnswer(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init);
  const body = await response.text();
  const age = response.headers.get('age');
  return {
    status: response.status,
    headers: response.headers,
    body,
    cacheStatus: response.headers.get('cache-status') ?? '',
    age: age === null ? undefined : Number(age),
  };
}

export async function cacheSetup(script: Script, cacheYaml = '{}', extra = '', upstreamExtra = ''): Promise<CacheSetup> {
  const backend = await startBackend(script);
  const gw = await startGateway(`
upstreams:
  api: { backends: [ { url: ${backend.url} } ] ${upstreamExtra} }
${extra}
routes:
  - name: cached
    upstream: api
    cache: ${cacheYaml}
`);
  return {
    gw,
    backend,
    calls: (url) => backend.received.filter((r) => url === undefined || r.url === url).length,
    get: (path, headers = {}, method = 'GET', body) => fetchAnswer(gw.url + path, { method, headers, body }),
  };
}
