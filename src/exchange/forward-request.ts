// What an exchange sends: the request as every attempt replays it, and undici's options for
// one attempt on one backend (its base path, its own header edits, its SNI).

import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { applyHeaderEdit } from '../routing/header-edit.js';
import type { CompiledBackend } from '../snapshot/snapshot.js';
import type { RequestScope } from './request-scope.js';
import { azurePath, bodyForModel } from './llm-rewrite.js';

export interface ForwardRequest {
  method: string;
  /** Path and query as the backend should see them, before the backend's own base path. */
  path: string;
  headers: Record<string, string | string[]>;
  /** Whole body (replayable), a one-shot stream, or null. */
  body: Buffer | AsyncIterable<Buffer> | null;
  replayable: boolean;
  /** The Host value the client sent, for hostHeader: preserve. */
  clientHost: string | undefined;
  /** Telemetry of the client request (absent when nothing follows it). */
  scope?: RequestScope | undefined;
  /** The body as a JSON object, when it was read whole and parsed (LLM routes). */
  json?: Record<string, unknown> | undefined;
  /** Bodies rewritten for backends with their own `model`, by model. */
  bodies?: Map<string, Buffer>;
  /** The request's LLM token estimate, when known (steering by remaining tokens). */
  tokenEstimate?: number | undefined;
}

export function dispatchOptions(
  backend: CompiledBackend,
  forward: ForwardRequest,
  headersTimeout: number,
  bodyTimeout: number,
): Dispatcher.DispatchOptions {
  const llm = backend.llm;
  const path = llm?.deployment ? azurePath(forward.path, llm.deployment, llm.apiVersion) : forward.path;
  const body = llm?.model ? bodyForModel(forward, llm.model) : forward.body;
  const options: Dispatcher.DispatchOptions & { servername?: string } = {
    path: backend.basePath + path,
    method: forward.method as Dispatcher.HttpMethod,
    headers: backend.headerEdit ? applyHeaderEdit(forward.headers, backend.headerEdit) : forward.headers,
    // undici accepts async iterables as bodies; its types only list Readable.
    body: body as Buffer | Readable | null,
    headersTimeout,
    bodyTimeout,
  };
  // SNI comes from the backend, never from a preserved or literal Host header.
  if (backend.tls?.servername) options.servername = backend.tls.servername;
  return options;
}
