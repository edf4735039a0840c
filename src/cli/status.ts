// `spillway status [--watch]`: the upstream table of the live console, in the terminal (for SSH
// sessions), read from the admin listener's event stream. One-shot prints the first view that
// has rates and exits; --watch redraws on every sample until Ctrl-C.

import { parseArgs } from 'node:util';
import type { ConsoleView } from '../telemetry/console-view.js';
import type { DecisionEvent } from '../telemetry/event-buffer.js';
import { formatStatus } from './status-table.js';

export const STATUS_USAGE = `usage: spillway status [--watch] [--admin URL] [--token TOKEN]
  --admin URL     the admin listener (default http://127.0.0.1:9901)
  --token TOKEN   admin token (default: $SPILLWAY_ADMIN_TOKEN)
  -w, --watch     redraw every second until Ctrl-C`;

/** A one-shot waits this long for a view with rates (the sampler's second sample). */
const FIRST_RATES_MS = 2_500;
const KEPT_DECISIONS = 8;

interface StatusOptions {
  admin: string;
  token: string | undefined;
  watch: boolean;
}

export async function runStatus(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let options: StatusOptions;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        admin: { type: 'string' },
        token: { type: 'string' },
        watch: { type: 'boolean', short: 'w' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(`${STATUS_USAGE}\n`);
      return 0;
    }
    options = {
      admin: (values.admin ?? 'http://127.0.0.1:9901').replace(/\/+$/, ''),
      token: values.token ?? env.SPILLWAY_ADMIN_TOKEN,
      watch: values.watch ?? false,
    };
    new URL(options.admin);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${STATUS_USAGE}\n`);
    return 2;
  }
  return streamStatus(options);
}

async function streamStatus(options: StatusOptions): Promise<number> {
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  const decisions: DecisionEvent[] = [];
  let last: ConsoleView | undefined;
  const started = Date.now();
  const tty = process.stdout.isTTY === true;
  try {
    const response = await fetch(`${options.admin}/admin/console/stream`, {
      headers: { accept: 'text/event-stream', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
      signal: abort.signal,
    });
    if (response.status === 401 || response.status === 403) {
      process.stderr.write(`the admin listener refused this request (${response.status}): pass --token or set SPILLWAY_ADMIN_TOKEN\n`);
      return 1;
    }
    if (!response.ok || !response.body) {
      process.stderr.write(`${options.admin}/admin/console/stream answered ${response.status}\n`);
      return 1;
    }
    for await (const message of sseMessages(response.body)) {
      if (message.event === 'decision') {
        decisions.push(JSON.parse(message.data) as DecisionEvent);
        if (decisions.length > KEPT_DECISIONS) decisions.shift();
        continue;
      }
      if (message.event !== 'state') continue;
      last = JSON.parse(message.data) as ConsoleView;
      if (options.watch) {
        process.stdout.write(`${tty ? '\x1b[H\x1b[2J' : '\n'}${formatStatus(last, decisions)}\n`);
        continue;
      }
      if (last.windowSec > 0 || Date.now() - started > FIRST_RATES_MS) break;
    }
  } catch (error) {
    if (!abort.signal.aborted) {
      process.stderr.write(`cannot read ${options.admin}: ${(error as Error).cause ?? (error as Error).message}\n`);
      return 1;
    }
  } finally {
    process.off('SIGINT', onSigint);
    abort.abort();
  }
  if (!options.watch) {
    if (!last) {
      process.stderr.write(`${options.admin} closed the stream before sending a view\n`);
      return 1;
    }
    process.stdout.write(`${formatStatus(last, decisions)}\n`);
  }
  return 0;
}

/** Server-Sent Events from a response body: one { event, data } per blank-line-terminated block. */
async function* sseMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) yield { event, data: data.join('\n') };
    }
  }
}
