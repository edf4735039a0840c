// Per-backend rewriting of LLM requests, so one pool can mix OpenAI-style and Azure OpenAI
// backends: `model` sets the JSON body's model for that backend; `deployment` turns an
// OpenAI-style path into Azure's /openai/deployments/<name>/<operation>?api-version=….
// Bodies are re-serialised once per backend and request, only when the backend asks for a
// different model than the client's.

/** "/v1/chat/completions?x=1" or "/openai/deployments/other/chat/completions" → the Azure path for `deployment`. */
export function azurePath(path: string, deployment: string, apiVersion: string): string {
  const q = path.indexOf('?');
  let pathname = q === -1 ? path : path.slice(0, q);
  const query = q === -1 ? '' : path.slice(q + 1);
  const azure = /^\/openai\/deployments\/[^/]+(\/.*)?$/.exec(pathname);
  if (azure) pathname = azure[1] ?? '';
  else if (pathname === '/v1' || pathname.startsWith('/v1/')) pathname = pathname.slice(3);
  else if (pathname.startsWith('/openai/')) pathname = pathname.slice(7);
  const params = new URLSearchParams(query);
  if (!params.has('api-version')) params.set('api-version', apiVersion);
  return `/openai/deployments/${encodeURIComponent(deployment)}${pathname}?${params.toString()}`;
}

/** The body for a backend that names its own model (cached per model on the forward request). */
import { parseJsonObject } from '../ratelimit/token-estimate.js';

export interface RewritableRequest {
  readonly body: Buffer | AsyncIterable<Buffer> | null;
  json?: Record<string, unknown> | undefined;
  bodies?: Map<string, Buffer>;
}

export function bodyForModel(forward: RewritableRequest, model: string): Buffer | null | AsyncIterable<Buffer> {
  if (!Buffer.isBuffer(forward.body)) return forward.body;
  const json = (forward.json ??= parseJsonObject(forward.body));
  if (json === undefined || json.model === model) return forward.body;
  const cache = (forward.bodies ??= new Map());
  let body = cache.get(model);
  if (body === undefined) {
    body = Buffer.from(JSON.stringify({ ...json, model }));
    cache.set(model, body);
  }
  return body;
}
