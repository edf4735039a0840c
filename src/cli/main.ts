#!/usr/bin/env node
// spillway CLI: `spillway --config FILE` (start), `spillway check --config FILE`, `spillway schema`,
// `spillway status [--watch]`.

import { boundYoungGeneration } from './young-generation.js'; // first: its start-up effect must run before the other modules load
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/errors.js';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { gatewayJsonSchema } from '../config/schema/index.js';
import { adminExposureWarning } from '../config/admin-exposure.js';
import { Gateway } from '../listener/gateway.js';
import { createLogger } from '../telemetry/logger.js';
import { SecretScrubber } from '../telemetry/redact.js';
import { startTracingFromEnv, type Tracing } from '../telemetry/tracing.js';
import { runStatus } from './status.js';

const USAGE = `usage:
  spillway [start] --config FILE   run the gateway
  spillway check --config FILE     validate a config file (exit 0 when valid)
  spillway schema                  print the config JSON Schema
  spillway status [--watch]        the upstream table from a running gateway's admin listener
                                   (--admin URL, --token TOKEN; see spillway status --help)
options:
  -c, --config FILE   config file (default: $SPILLWAY_CONFIG or ./gateway.yaml)
  -h, --help          this text`;

function parseCliArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'status') return runStatus(argv.slice(1));
  let parsed: ReturnType<typeof parseCliArgs>;
  try {
    parsed = parseCliArgs(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0] ?? 'start';
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 1 || !['start', 'check', 'schema'].includes(command)) {
    process.stderr.write(`unknown command: ${positionals.join(' ')}\n${USAGE}\n`);
    return 2;
  }
  if (command === 'schema') {
    process.stdout.write(`${JSON.stringify(gatewayJsonSchema(), null, 2)}\n`);
    return 0;
  }
  const file = values.config ?? process.env.SPILLWAY_CONFIG ?? 'gateway.yaml';

  let loaded: LoadedConfig;
  try {
    loaded = await loadConfigFile(file);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n${error.issues.length} problem${error.issues.length === 1 ? '' : 's'} in ${file}\n`);
      return 1;
    }
    throw error;
  }
  if (command === 'check') {
    for (const warning of loaded.warnings)
      process.stderr.write(`warning: ${warning.file}:${warning.line}:${warning.column} ${warning.path} ${warning.message}\n`);
    const exposed = adminExposureWarning(loaded.config);
    if (exposed) process.stderr.write(`warning: ${file} admin: ${exposed}\n`);
    process.stdout.write(`${file}: ok (${Object.keys(loaded.config.upstreams).length} upstreams, ${loaded.config.routes.length} routes)\n`);
    return 0;
  }

  boundYoungGeneration(process.env);
  const scrubber = new SecretScrubber(loaded.config);
  const logger = createLogger(loaded.config.log.level, undefined, { headers: loaded.config.log.redact, scrubber });
  for (const warning of loaded.warnings)
    logger.warn(
      { event: 'config.warning', file: warning.file, line: warning.line, column: warning.column, path: warning.path },
      warning.message,
    );
  let tracing: Tracing | undefined;
  try {
    tracing = await startTracingFromEnv(process.env);
    if (tracing) logger.info({ exporter: process.env.OTEL_TRACES_EXPORTER ?? 'otlp' }, 'OpenTelemetry tracing on');
  } catch (error) {
    logger.error({ err: error }, 'cannot start OpenTelemetry tracing (continuing without traces)');
  }
  const gateway = new Gateway(loaded.config, {
    file,
    logger,
    source: loaded.source,
    scrubber,
    ...(tracing ? { tracer: tracing.tracer } : {}),
  });
  // After an uncaught exception node's state is undefined: stop taking requests, let those in
  // flight finish (shutdown.drain), and exit non-zero so the supervisor starts a fresh process.
  let crashing = false;
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error, event: 'process.crash' }, 'uncaught exception: draining and exiting');
    if (crashing) return;
    crashing = true;
    const drain = gateway.snapshot.config.shutdown.drain;
    // Exit even if draining hangs on the broken state.
    setTimeout(() => process.exit(70), drain + 2_000).unref();
    gateway.close(drain).then(
      () => process.exit(70),
      () => process.exit(70),
    );
  });
  process.on('unhandledRejection', (error) => logger.error({ err: error }, 'unhandled rejection (gateway keeps serving)'));
  try {
    await gateway.listen();
  } catch (error) {
    logger.fatal({ err: error }, 'cannot listen');
    await gateway.close(0).catch(() => undefined);
    return 1;
  }
  logger.info({ url: gateway.url, admin: gateway.adminUrl, config: file }, 'spillway listening');
  // Hot reload: SIGHUP, POST /admin/reload, and (reload.watch) a change of the file.
  const onHangup = () => void gateway.reloader.reload('SIGHUP');
  process.on('SIGHUP', onHangup);
  if (loaded.config.reload.watch) gateway.reloader.watch(loaded.config.reload.debounce);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, drainMs: gateway.snapshot.config.shutdown.drain }, 'stopping: draining in-flight requests');
      gateway.close().then(resolve, (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  process.off('SIGHUP', onHangup);
  await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'could not flush traces'));
  logger.info('stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`spillway: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
