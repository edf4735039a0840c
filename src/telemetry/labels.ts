// Label values for metrics. They come from config names (route, upstream, backend URL, policy)
// or from small fixed sets (method, status class, outcome) — never from raw request data.

import type { CompiledRoute } from '../snapshot/snapshot.js';

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT'] as const;
const METHOD_INDEX = new Map<string, number>(METHODS.map((method, index) => [method, index]));
/** Index of the "OTHER" method label. */
export const OTHER_METHOD = METHODS.length;

export function methodIndex(method: string): number {
  return METHOD_INDEX.get(method) ?? OTHER_METHOD;
}

export function methodLabel(index: number): string {
  return METHODS[index] ?? 'OTHER';
}

/** 0 = no response (client went away), 1..5 = 1xx..5xx. */
export function statusClassIndex(status: number): number {
  const cls = Math.floor(status / 100);
  return cls >= 1 && cls <= 5 ? cls : 0;
}

const STATUS_CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export function statusClassLabel(index: number): string {
  return STATUS_CLASSES[index] ?? 'none';
}

/** Label of requests that matched no route. */
export const UNMATCHED_ROUTE = '(unmatched)';

export function routeLabel(route: CompiledRoute | undefined): string {
  return route ? route.name : UNMATCHED_ROUTE;
}

const safeUrls = new WeakMap<object, string>();

/** The backend as telemetry names it: its configured name, else its URL without any user:password@. */
export function backendLabel(backend: { readonly url: string; readonly name?: string | undefined }): string {
  let label = safeUrls.get(backend);
  if (label === undefined) {
    label = backend.name ?? (backend.url.includes('@') ? backend.url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1') : backend.url);
    safeUrls.set(backend, label);
  }
  return label;
}
