// Preloaded into one gateway of the telemetry scenario (`node --import bench/preload/noop-export.ts ...`):
// the OTLP/protobuf trace exporter the OpenTelemetry SDK builds from OTEL_* drops every batch
// without serialising or sending it. Spans are still created, batched and handed to the
// exporter: "tracing to a no-op exporter", the cost of tracing without the cost of export.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

OTLPTraceExporter.prototype.export = function exportNothing(_spans, done): void {
  done({ code: 0 });
};
