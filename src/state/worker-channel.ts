// A worker process's line to its cluster primary (node:cluster IPC): notices one way, requests
// with an id and a bounded wait for the reply. Messages are tagged `spillway` so they never mix
// with prom-client's own cluster messages on the same channel.

export interface WorkerMessage {
  readonly spillway: string;
  readonly [field: string]: unknown;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

type Port = Pick<NodeJS.Process, 'on' | 'send' | 'connected'>;

export class WorkerChannel {
  #next = 0;
  readonly #pending = new Map<number, Pending>();
  readonly #handlers = new Map<string, (message: WorkerMessage) => void>();

  constructor(private readonly port: Port = process) {
    port.on('message', (message: unknown) => this.#receive(message));
  }

  get connected(): boolean {
    return this.port.connected === true && typeof this.port.send === 'function';
  }

  /** Fire and forget; dropped when the primary is gone. */
  notify(message: WorkerMessage): void {
    if (!this.connected) return;
    try {
      this.port.send!(message);
    } catch {
      // The channel closed between the check and the send: the primary is gone.
    }
  }

  /** Asks the primary; rejects after `timeoutMs` or when the channel is closed. */
  request<T>(type: string, body: Record<string, unknown>, timeoutMs: number): Promise<T> {
    if (!this.connected) return Promise.reject(new Error('no cluster primary'));
    const id = ++this.#next;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`the cluster primary did not answer ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.notify({ ...body, spillway: type, id });
    });
  }

  /** Handles notices of one type from the primary. */
  on(type: string, handler: (message: WorkerMessage) => void): void {
    this.#handlers.set(type, handler);
  }

  #receive(message: unknown): void {
    if (typeof message !== 'object' || message === null) return;
    const tagged = message as WorkerMessage;
    if (typeof tagged.spillway !== 'string') return;
    if (tagged.spillway === 'reply') {
      const pending = this.#pending.get(tagged.id as number);
      if (!pending) return;
      this.#pending.delete(tagged.id as number);
      clearTimeout(pending.timer);
      if (typeof tagged.error === 'string') pending.reject(new Error(tagged.error));
      else pending.resolve(tagged.value);
      return;
    }
    this.#handlers.get(tagged.spillway)?.(tagged);
  }
}
