// The one polling helper of the test suite: wait until something is true (or a value is ready),
// failing with a message that names what was awaited and the last value seen.

export interface WaitOptions<T> {
  /** Give up after this many ms (default 5000: generous, a passing wait returns as soon as it can). */
  timeout?: number;
  /** Pause between probes, in ms (default 20). */
  interval?: number;
  /** What is awaited, for the failure message: "timed out after 5000 ms waiting for <message>". */
  message?: string;
  /** Done when this holds for the probed value; without it, when the value is truthy. */
  until?: (value: T) => boolean;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `probe` until its value is truthy (or satisfies `options.until`) and returns that value.
 * Throws `timed out after N ms waiting for <message> (last value: …)` when `timeout` passes first.
 * Errors thrown by `probe` are not swallowed: a probe that can fail while not ready yet should
 * catch and return a falsy value itself.
 */
export async function waitUntil<T>(probe: () => T | Promise<T>, options: WaitOptions<T> = {}): Promise<T> {
  const { timeout = 5_000, interval = 20, message = 'condition', until = (value: T) => Boolean(value) } = options;
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (until(value)) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms waiting for ${message} (last value: ${describe(value)})`);
    await sleep(interval);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) return text.length > 300 ? `${text.slice(0, 300)}…` : text;
  } catch {
    // fall through: not serialisable
  }
  return String(value);
}
