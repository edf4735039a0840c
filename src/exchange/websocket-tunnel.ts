// A WebSocket tunnel: the client's and the backend's sockets spliced after a 101, closed
// together, ended with a Close frame of the gateway's own on idle timeout or shutdown.

import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { WebSocketCloseReason } from '../core/events.js';
import { CLOSE_GOING_AWAY, closeFrame } from './websocket-frames.js';

/** Open tunnels, so shutdown can close them with a proper Close frame. */
export class TunnelRegistry {
  readonly #open = new Set<Tunnel>();

  add(tunnel: Tunnel): void {
    this.#open.add(tunnel);
    tunnel.onClosed(() => this.#open.delete(tunnel));
  }

  get size(): number {
    return this.#open.size;
  }

  closeAll(reason = 'gateway shutting down'): void {
    for (const tunnel of this.#open) tunnel.close(CLOSE_GOING_AWAY, reason);
  }
}

/** Two sockets spliced after a 101: bytes both ways, closed together, ended after an idle time. */
export class Tunnel {
  #closing = false;
  #closedCount = 0;
  reason: WebSocketCloseReason = 'closed';
  readonly openedAt = performance.now();
  #settled = false;
  readonly #onClosed: Array<() => void> = [];

  constructor(
    readonly client: Socket,
    readonly backend: Socket,
    readonly idleMs: number,
  ) {}

  open(res: IncomingMessage, backendHead: Buffer, clientHead: Buffer): void {
    const { client, backend } = this;
    let head = `HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}\r\n`;
    for (let i = 0; i < res.rawHeaders.length; i += 2) head += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
    client.write(`${head}\r\n`);
    if (backendHead.length > 0) client.write(backendHead);
    if (clientHead.length > 0) backend.write(clientHead);
    client.setNoDelay?.(true);
    backend.setNoDelay(true);
    // A Close frame travels through like any other; when one side's TCP connection ends, the
    // other is ended gracefully (its pending bytes, e.g. the answering Close, still go out).
    client.pipe(backend);
    backend.pipe(client);
    for (const [socket, other] of [
      [client, backend],
      [backend, client],
    ] as const) {
      socket.on('error', () => {
        if (!this.#closing) this.reason = 'error';
        this.#destroyBoth();
      });
      // A FIN from one side (the client left) is passed on by the pipe. A side that never
      // answers with its own FIN would keep both connections half-closed (CLOSE-WAIT and
      // FIN-WAIT-2) and the slot taken until the idle timeout: both are destroyed 2 s later.
      socket.once('end', () => {
        if (!other.writableEnded) other.end();
        setTimeout(() => this.#destroyBoth(), 2_000).unref();
      });
      socket.once('close', () => {
        if (!other.destroyed) {
          other.end();
          setTimeout(() => other.destroy(), 2_000).unref();
        }
        if (++this.#closedCount === 2) this.#settle();
      });
    }
    // Writes to the client count too, so this fires only when nothing moved either way.
    if (this.idleMs > 0) client.setTimeout(this.idleMs, () => this.close(CLOSE_GOING_AWAY, 'idle timeout', 'idle'));
  }

  /** Sends Close to both sides, then ends both connections (destroyed if they linger). */
  close(code: number, reason: string, why: WebSocketCloseReason = 'shutdown'): void {
    if (this.#closing) return;
    this.#closing = true;
    this.reason = why;
    const { client, backend } = this;
    client.setTimeout(0);
    client.unpipe(backend);
    backend.unpipe(client);
    // Keep reading (and dropping) what each side still sends — its answering Close — so both
    // connections reach their end and close.
    client.resume();
    backend.resume();
    if (client.writable) client.end(closeFrame(code, reason, false));
    if (backend.writable) backend.end(closeFrame(code, reason, true));
    setTimeout(() => this.#destroyBoth(), 2_000).unref();
  }

  onClosed(listener: () => void): void {
    if (this.#settled) listener();
    else this.#onClosed.push(listener);
  }

  #destroyBoth(): void {
    this.client.destroy();
    this.backend.destroy();
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    for (const listener of this.#onClosed.splice(0)) listener();
  }
}
