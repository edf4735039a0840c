// Per-connection limits of the HTTP/2 listener that node's settings do not cover:
//  - rapid reset: a client that cancels more than maxResetsPerSecond streams within a second gets
//    GOAWAY (ENHANCE_YOUR_CALM) and loses the connection;
//  - keep-alive: a connection with no open stream for keepAliveIdle is closed (GOAWAY). A stream
//    that is open — an SSE response waiting for its next event — keeps it, however quiet.

import { constants, type Http2Server, type Http2Session, type Http2Stream } from 'node:http2';
import type { Http2Limits } from '../config/schema/listen.js';
import type { ProxyObserver } from '../snapshot/observer.js';

export interface Http2GuardOptions {
  limits: Http2Limits;
  keepAliveIdleMs: number;
  getObserver: () => ProxyObserver;
}

export interface Http2Sessions {
  /** Destroys every open session (the end of a shutdown's drain). */
  destroyAll(): void;
}

export function guardHttp2Sessions(server: Pick<Http2Server, 'on'>, options: Http2GuardOptions): Http2Sessions {
  const { limits, keepAliveIdleMs, getObserver } = options;
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    let windowStart = 0;
    let resets = 0;
    let refused = false;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        if (!session.closed && !session.destroyed) session.close();
      }, keepAliveIdleMs);
      idle.unref();
    };
    const refuse = () => {
      refused = true;
      clearTimeout(idle);
      getObserver().clientProtocolError('http2-rapid-reset');
      // GOAWAY and gone at once, while nghttp2 is still inside the read: every frame queued
      // behind (hundreds of HEADERS per TLS record) would otherwise become a request object first.
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.destroy();
    };
    const onReset = () => {
      if (refused) return;
      const now = performance.now();
      if (now - windowStart >= 1000) {
        windowStart = now;
        resets = 0;
      }
      if (++resets > limits.maxResetsPerSecond) refuse();
    };
    armIdle();
    session.on('stream', (stream: Http2Stream) => {
      open++;
      clearTimeout(idle);
      // The client cancelled the stream (RST_STREAM) before its answer was complete. Node says
      // so synchronously, while it parses the frame, so a flood is stopped within the read.
      stream.once('aborted', () => {
        if (!session.destroyed) onReset();
      });
      stream.once('close', () => {
        open--;
        if (open === 0 && !refused && !session.closed && !session.destroyed) armIdle();
      });
    });
    session.once('close', () => {
      clearTimeout(idle);
      sessions.delete(session);
    });
    // A protocol error on one connection is that connection's end, never the process's.
    session.on('error', () => session.destroy());
  });
  return {
    destroyAll() {
      for (const session of sessions) session.destroy();
    },
  };
}
