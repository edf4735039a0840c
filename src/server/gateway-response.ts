// The response class of the HTTP/1 data-plane servers. It carries one header the gateway adds to
// whatever answer is written — the request id — without setHeader(): a header set that way sends
// Node's writeHead() down its slow path (every header of the answer re-set one by one), and the
// proxied answer is written with writeHead(status, headers) on every request.

import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';

export class GatewayResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  #deferredName: string | undefined = undefined;
  #deferredValue = '';

  /** Adds `name: value` to the answer when its head is written; it wins over a header of the same name. */
  deferHeader(name: string, value: string): void {
    this.#deferredName = name;
    this.#deferredValue = value;
  }

  override writeHead(statusCode: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
    const name = this.#deferredName;
    if (name !== undefined) {
      this.#deferredName = undefined;
      const fields = typeof reason === 'string' ? headers : reason;
      // Every writer of the gateway passes a fresh object; anything else takes the general path.
      if (fields !== undefined && !Array.isArray(fields)) fields[name] = this.#deferredValue;
      else this.setHeader(name, this.#deferredValue);
    }
    return typeof reason === 'string' ? super.writeHead(statusCode, reason, headers) : super.writeHead(statusCode, reason);
  }
}
