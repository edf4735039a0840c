// Where an upstream exchange delivers its response. The normal path streams into the client's
// ServerResponse; fan-out and mirroring collect or discard through other sinks, so every caller
// gets the same selection, cooldown and failover logic.

import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { sendProblem, type ProblemCode, type ProblemOptions } from '../core/problems.js';

export type { ProblemOptions };

export interface ResponseSink {
  /** True once start() was called: no retry, no problem response after this. */
  readonly started: boolean;
  /** Calls `listener` once if the receiver goes away before end(). */
  onGone(listener: () => void): void;
  start(status: number, headers: IncomingHttpHeaders): void;
  /** Returns false when the receiver wants the producer to pause until onDrain. */
  write(chunk: Buffer): boolean;
  onDrain(listener: () => void): void;
  end(): void;
  /** A gateway-made error (problem+json) — or a cut connection if the response already started. */
  problem(code: ProblemCode, detail: string, options?: ProblemOptions): void;
  /** The response failed mid-stream. */
  abort(error: Error): void;
  /** What follows is the route's fallback (a static answer or another upstream), not the upstream's answer. */
  fallingBack?(): void;
  /** The answer about to start is the gateway's own (a static fallback), not a backend's. */
  gatewayAnswer?(): void;
}

/**
 * True once the whole answer went out. An HTTP/2 response reports writableFinished also for a
 * stream the client reset, so that it was ended by us (writableEnded) must hold too.
 */
function completed(res: ServerResponse): boolean {
  return res.writableEnded && res.writableFinished;
}

/** An HTTP/1 response is destroyed with its socket; an HTTP/2 one has no `destroyed`, its stream does. */
function isClosed(res: ServerResponse): boolean {
  const stream = (res as ServerResponse & { stream?: { destroyed: boolean } }).stream;
  return stream ? stream.destroyed : res.destroyed;
}

/** Streams into the client's response. */
export class ServerResponseSink implements ResponseSink {
  constructor(readonly res: ServerResponse) {}

  get started(): boolean {
    return this.res.headersSent;
  }

  onGone(listener: () => void): void {
    const res = this.res;
    // Gone already (an asynchronous stage, e.g. a rate-limit check, outlived the client): the
    // 'close' event has passed, so say it now or the exchange would wait on a dead socket.
    if (isClosed(res) && !completed(res)) {
      listener();
      return;
    }
    res.once('close', () => {
      if (!completed(res)) listener();
    });
  }

  start(status: number, headers: IncomingHttpHeaders): void {
    // Fields the gateway set before the exchange (e.g. RateLimit) win over the backend's.
    const set = this.res.getHeaderNames();
    for (let i = 0; i < set.length; i++) delete headers[set[i]!];
    this.res.writeHead(status, headers);
  }

  write(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }

  onDrain(listener: () => void): void {
    this.res.once('drain', listener);
  }

  end(): void {
    this.res.end();
  }

  problem(code: ProblemCode, detail: string, options?: ProblemOptions): void {
    sendProblem(this.res, code, detail, options);
  }

  abort(error: Error): void {
    this.res.destroy(error);
  }
}
