import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, startBackend, startStaticBackend, type TestBackend } from './helpers/backend.js';
import { ROOT, runCli, startCli, writeTempConfig, type CliGateway } from './helpers/gateway.js';
import { Scrape } from './helpers/telemetry.js';
import { expectCheckPasses } from './helpers/config.js';

let cli: CliGateway | undefined;
let backends: TestBackend[] = [];
let receiver: Server | undefined;
afterEach(async () => {
  await cli?.stop('SIGKILL');
  await closeAll(...backends);
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  cli = undefined;
  backends = [];
  receiver = undefined;
});

interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

/** A minimal OTLP/HTTP (JSON) trace receiver on loopback. */
async function startOtlpReceiver(): Promise<{ url: string; spans: OtlpSpan[]; resources: Array<Record<string, unknown>> }> {
  const spans: OtlpSpan[] = [];
  const resources: Array<Record<string, unknown>> = [];
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const payload = JSON.parse(body) as {
          resourceSpans: Array<{ resource: Record<string, unknown>; scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
        };
        for (const resourceSpans of payload.resourceSpans) {
          resources.push(resourceSpans.resource);
          for (const scope of resourceSpans.scopeSpans) spans.push(...scope.spans);
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`, spans, resources };
}

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value ? Object.values(value)[0] : undefined;
}

describe('telemetry in the real CLI', () => {
  it('exports spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, and serves /metrics', async () => {
    const otlp = await startOtlpReceiver();
    const throttling = await startStaticBackend(429, { 'retry-after-ms': '2000' });
    const healthy = await startBackend();
    backends = [throttling, healthy];
    const file = await writeTempConfig(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  llm:
    backends:
      - { url: ${throttling.url} }
      - { url: ${healthy.url}, priority: 2 }
routes:
  - { name: chat, match: { path: /v1/ }, upstream: llm }
`);
    cli = await startCli(file, {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_SERVICE_NAME: 'spillway-e2e',
      OTEL_NODE_RESOURCE_DETECTORS: 'env',
    });
    expect(cli.lines.some((line) => line.msg === 'OpenTelemetry tracing on')).toBe(true);
    const response = await fetch(`${cli.url}/v1/chat`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(200);
    await response.text();

    const metrics = new Scrape(await (await fetch(`${cli.adminUrl}/metrics`)).text());
    expect(metrics.value('spillway_requests_total', { route: 'chat', method: 'POST', status_class: '2xx' })).toBe(1);
    expect(metrics.value('spillway_upstream_attempts_total', { upstream: 'llm', backend: throttling.url, outcome: 'throttled' })).toBe(1);

    expect(await cli.stop('SIGTERM')).toBe(0); // shutdown flushes the batch
    expect(otlp.spans.map((span) => span.name).sort()).toEqual(['POST chat', 'POST llm', 'POST llm']);
    const server = otlp.spans.find((span) => span.name === 'POST chat')!;
    const attempts = otlp.spans
      .filter((span) => span.name === 'POST llm')
      .sort((a, b) => Number(attribute(a, 'spillway.attempt')) - Number(attribute(b, 'spillway.attempt')));
    for (const attempt of attempts) {
      expect(attempt.traceId).toBe(server.traceId);
      expect(attempt.parentSpanId).toBe(server.spanId);
    }
    expect(attribute(attempts[0]!, 'spillway.outcome')).toBe('throttled');
    expect(attribute(attempts[0]!, 'spillway.cooldown.source')).toBe('retry-after-ms');
    expect(attribute(attempts[1]!, 'spillway.retry.reason')).toBe('throttled');
    expect(healthy.received[0]!.headers.traceparent).toMatch(new RegExp(`^00-${server.traceId}-${attempts[1]!.spanId}-01$`));
    expect(JSON.stringify(otlp.resources)).toContain('spillway-e2e');
  });

  it('config/telemetry.yaml is a valid example', async () => {
    await expectCheckPasses(join(ROOT, 'config/telemetry.yaml'));
  });

  it('rejects bad telemetry config with file:line:col', async () => {
    const file = await writeTempConfig(
      `log:\n  requests:\n    sample: 2\nmetrics: { enabled: maybe }\nupstreams:\n  a:\n    backends: [ { url: http://127.0.0.1:1 } ]\nroutes:\n  - { upstream: a }\n`,
    );
    const result = await runCli(['check', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/gateway\.yaml:3:\d+ .*log\.requests\.sample/);
    expect(result.stderr).toMatch(/gateway\.yaml:4:\d+ .*metrics\.enabled/);
  });
});
