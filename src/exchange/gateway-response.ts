// The response class of the HTTP/1 data-plane servers. It carries the fields the gateway adds to
// whatever answer is written — the request id, the rate-limit fields — without setHeader(): a
// field set that way sends Node's writeHead() down its slow path (every header of the answer
// re-set one by one), and the proxied answer is written with writeHead(status, headers).

import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';

export class GatewayResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  #deferred: Record<string, string> | undefined = undefined;

  /** Adds `name: value` (lower-case name) when the head is written; it wins over a field of the same name. */
  deferHeader(name: string, value: string): void {
    (this.#deferred ??= {})[name] = value;
  }

  override writeHead(
    statusCode: number,
    reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this {
    const deferred = this.#deferred;
    if (deferred !== undefined) {
      this.#deferred = undefined;
      const fields = typeof reason === 'string' ? headers : reason;
      // Every writer of the gateway passes a fresh object; anything else takes the general path.
      if (fields !== undefined && !Array.isArray(fields)) Object.assign(fields, deferred);
      else for (const name in deferred) this.setHeader(name, deferred[name]!);
    }
    return typeof reason === 'string' ? super.writeHead(statusCode, reason, headers) : super.writeHead(statusCode, reason);
  }
}

/** Sets a field the gateway adds to the answer: deferred to writeHead on HTTP/1, setHeader otherwise. */
export function addResponseField(res: ServerResponse, name: string, value: string): void {
  if (res instanceof GatewayResponse) res.deferHeader(name, value);
  else res.setHeader(name, value);
}
