import { SpanKind } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { tracingRequested } from '../src/telemetry/tracing.js';
import { startBackend, startStaticBackend } from './helpers/backend.js';
import { startGateway } from './helpers/gateway.js';
import { dashboardYaml, inMemoryTracer, type TestTracer } from './helpers/telemetry.js';
import { perTest } from './helpers/per-test.js';

let tracing: TestTracer | undefined;
const live = perTest(async () => {
  await tracing?.shutdown();
  tracing = undefined;
});

const INCOMING_TRACE = '0af7651916cd43dd8448eb211c80319c';
const INCOMING_PARENT = 'b7ad6b7169203331';

describe('OpenTelemetry spans', () => {
  it('a request that failed over once: one server span, two client spans with attempt attributes; traceparent reaches each backend', async () => {
    const throttling = await startStaticBackend(429, { 'retry-after-ms': '500', 'retry-after': '1' });
    const healthy = await startBackend(undefined, 'healthy');
    live.backends = [throttling, healthy];
    tracing = inMemoryTracer();
    live.gateway = await startGateway(
      `upstreams:
  llm:
    backends:
      - { url: ${throttling.url}, priority: 1 }
      - { url: ${healthy.url}, priority: 2 }
routes:
  - { name: chat, match: { path: /v1/ }, upstream: llm }
`,
      { tracer: tracing.tracer },
    );

    const response = await fetch(`${live.gateway.url}/v1/chat?x=1`, {
      method: 'POST',
      body: '{}',
      headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_PARENT}-01`, tracestate: 'vendor=abc' },
    });
    expect(response.status).toBe(200);
    await response.text();

    const spans = await tracing.spans(3);
    const server = spans.find((span) => span.kind === SpanKind.SERVER)!;
    const clients = spans
      .filter((span) => span.kind === SpanKind.CLIENT)
      .sort((a, b) => Number(a.attributes['spillway.attempt']) - Number(b.attributes['spillway.attempt']));
    expect(spans).toHaveLength(3);
    expect(clients).toHaveLength(2);

    // the incoming trace is continued
    expect(server.spanContext().traceId).toBe(INCOMING_TRACE);
    expect(server.parentSpanContext?.spanId).toBe(INCOMING_PARENT);
    expect(server.name).toBe('POST chat');
    expect(server.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': '/v1/chat',
      'http.route': '/v1/',
      'spillway.route': 'chat',
      'http.response.status_code': 200,
      'spillway.attempts': 2,
    });
    expect(server.attributes['spillway.request_id']).toBe(response.headers.get('x-request-id'));

    const [first, second] = clients as [(typeof clients)[0], (typeof clients)[0]];
    for (const client of clients) {
      expect(client.spanContext().traceId).toBe(INCOMING_TRACE);
      expect(client.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(client.name).toBe('POST llm');
    }
    expect(first.attributes).toMatchObject({
      'spillway.attempt': 1,
      'spillway.upstream': 'llm',
      'spillway.backend': throttling.url,
      'spillway.outcome': 'throttled',
      'http.response.status_code': 429,
      'spillway.cooldown.set': true,
      'spillway.cooldown.source': 'retry-after-ms',
      'spillway.cooldown.value': '500',
      'spillway.cooldown.ms': 500,
    });
    expect(first.attributes['spillway.retry.reason']).toBeUndefined();
    expect(second.attributes).toMatchObject({
      'spillway.attempt': 2,
      'spillway.backend': healthy.url,
      'spillway.outcome': 'ok',
      'spillway.retry.reason': 'throttled',
      'http.response.status_code': 200,
    });
    expect(second.attributes['spillway.cooldown.set']).toBeUndefined();

    // each backend saw its own attempt span as parent, and the incoming tracestate
    expect(throttling.received[0]!.headers.traceparent).toBe(`00-${INCOMING_TRACE}-${first.spanContext().spanId}-01`);
    expect(healthy.received[0]!.headers.traceparent).toBe(`00-${INCOMING_TRACE}-${second.spanContext().spanId}-01`);
    expect(healthy.received[0]!.headers.tracestate).toBe('vendor=abc');
  });

  it('an unsampled request records no span; each backend still gets the trace, sampled flag off', async () => {
    const throttling = await startStaticBackend(429, { 'retry-after-ms': '500' });
    const healthy = await startBackend(undefined, 'healthy');
    live.backends = [throttling, healthy];
    tracing = inMemoryTracer();
    live.gateway = await startGateway(
      `upstreams:\n  llm:\n    backends:\n      - { url: ${throttling.url}, priority: 1 }\n      - { url: ${healthy.url}, priority: 2 }\nroutes:\n  - { name: chat, upstream: llm }\n`,
      { tracer: tracing.tracer },
    );
    // parent-based sampling (the SDK default): a caller that did not sample is not sampled here
    const response = await fetch(`${live.gateway.url}/v1/chat`, {
      headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_PARENT}-00`, tracestate: 'vendor=abc' },
    });
    expect(response.status).toBe(200);
    await response.text();
    for (const backend of [throttling, healthy]) {
      const traceparent = backend.received[0]!.headers.traceparent as string;
      expect(traceparent).toMatch(new RegExp(`^00-${INCOMING_TRACE}-[0-9a-f]{16}-00$`));
      expect(traceparent).not.toContain(INCOMING_PARENT);
      expect(backend.received[0]!.headers.tracestate).toBe('vendor=abc');
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(tracing.exporter.getFinishedSpans()).toHaveLength(0);
  });

  it('a request the pre-sampler does not record touches no span; its backends still get the trace', async () => {
    const app = await startBackend();
    live.backends = [app];
    tracing = inMemoryTracer(() => false);
    live.gateway = await startGateway(`upstreams:\n  app:\n    backends: [ { url: ${app.url} } ]\nroutes:\n  - { upstream: app }\n`, {
      tracer: tracing.tracer,
    });
    await (
      await fetch(`${live.gateway.url}/a`, { headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_PARENT}-01`, tracestate: 'v=1' } })
    ).text();
    await (await fetch(`${live.gateway.url}/b`)).text();
    const [continued, started] = app.received.map((request) => request.headers.traceparent as string);
    // the caller's trace goes on with a new span id; a request without one starts a new trace
    expect(continued).toMatch(new RegExp(`^00-${INCOMING_TRACE}-[0-9a-f]{16}-00$`));
    expect(continued).not.toContain(INCOMING_PARENT);
    expect(app.received[0]!.headers.tracestate).toBe('v=1');
    expect(started).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(started).not.toContain(INCOMING_TRACE);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(tracing.exporter.getFinishedSpans()).toHaveLength(0);
  });

  it('starts a new trace when the client sends none; a failed attempt is an error span', async () => {
    const app = await startBackend();
    const deadPort = app.port;
    await app.close();
    tracing = inMemoryTracer();
    live.gateway = await startGateway(
      `upstreams:\n  app:\n    backends: [ { url: http://127.0.0.1:${deadPort} } ]\nroutes:\n  - { name: app, upstream: app }\n`,
      { tracer: tracing.tracer },
    );
    expect((await fetch(`${live.gateway.url}/x`)).status).toBe(502);
    const spans = await tracing.spans(2);
    const server = spans.find((span) => span.kind === SpanKind.SERVER)!;
    const client = spans.find((span) => span.kind === SpanKind.CLIENT)!;
    expect(server.parentSpanContext).toBeUndefined();
    expect(client.spanContext().traceId).toBe(server.spanContext().traceId);
    expect(client.attributes['spillway.outcome']).toBe('error');
    expect(client.status.code).toBe(2); // ERROR
    expect(server.status.code).toBe(2);
  });

  it('without a tracer no traceparent is added and client trace headers pass through untouched', async () => {
    const app = await startBackend();
    live.backends = [app];
    live.gateway = await startGateway(`upstreams:\n  app:\n    backends: [ { url: ${app.url} } ]\nroutes:\n  - { upstream: app }\n`);
    await (await fetch(`${live.gateway.url}/a`)).text();
    await (await fetch(`${live.gateway.url}/b`, { headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_PARENT}-01` } })).text();
    expect(app.received[0]!.headers.traceparent).toBeUndefined();
    expect(app.received[1]!.headers.traceparent).toBe(`00-${INCOMING_TRACE}-${INCOMING_PARENT}-01`);
  });
});

describe('retry spans', () => {
  it('a 502 retried on the next backend: the second attempt span names the retry reason', async () => {
    const failing = await startStaticBackend(502, {}, '{"error":"bad gateway"}');
    const healthy = await startBackend();
    live.backends = [failing, healthy];
    tracing = inMemoryTracer();
    live.gateway = await startGateway(
      `upstreams:
  api:
    retry: { on: [502] }
    backends:
      - { url: ${failing.url} }
      - { url: ${healthy.url}, priority: 2 }
routes:
  - { name: api, upstream: api }
`,
      { tracer: tracing.tracer },
    );
    expect((await fetch(`${live.gateway.url}/x`)).status).toBe(200);
    const spans = await tracing.spans(3);
    const clients = spans
      .filter((span) => span.kind === SpanKind.CLIENT)
      .sort((a, b) => Number(a.attributes['spillway.attempt']) - Number(b.attributes['spillway.attempt']));
    expect(
      clients.map((span) => [
        span.attributes['spillway.attempt'],
        span.attributes['spillway.outcome'],
        span.attributes['http.response.status_code'],
      ]),
    ).toEqual([
      [1, 'error', 502],
      [2, 'ok', 200],
    ]);
    expect(clients[1]!.attributes['spillway.retry.reason']).toBe('status 502');
    expect(clients[0]!.attributes['spillway.retry.reason']).toBeUndefined();
  });
});

describe('fan-out spans', () => {
  it("each part's attempt is a client span under the request's server span, with its own traceparent", async () => {
    const users = await startBackend();
    const orders = await startBackend();
    live.backends = [users, orders];
    tracing = inMemoryTracer();
    live.gateway = await startGateway(dashboardYaml(users.url, orders.url), { tracer: tracing.tracer });
    expect((await fetch(`${live.gateway.url}/dash`)).status).toBe(200);
    const spans = await tracing.spans(3);
    const server = spans.find((span) => span.kind === SpanKind.SERVER)!;
    const clients = spans.filter((span) => span.kind === SpanKind.CLIENT);
    expect(server.name).toBe('GET dashboard');
    expect(clients.map((span) => span.attributes['spillway.upstream']).sort()).toEqual(['orders', 'users']);
    for (const client of clients) {
      expect(client.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(client.attributes['spillway.attempt']).toBe(1);
    }
    const usersSpan = clients.find((span) => span.attributes['spillway.upstream'] === 'users')!;
    expect(users.received[0]!.headers.traceparent).toBe(`00-${server.spanContext().traceId}-${usersSpan.spanContext().spanId}-01`);
  });
});

describe('tracing is switched on by the standard OTEL_* variables only', () => {
  it('reads OTEL_TRACES_EXPORTER, the OTLP endpoints and OTEL_SDK_DISABLED', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'x' })).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' })).toBe(false);
  });
});
