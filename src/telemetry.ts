import { context, diag, DiagLogLevel, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import {
  AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type Sampler,
} from '@opentelemetry/sdk-trace'
import type { Config } from './config.js'

// The OpenTelemetry SDK (API.md §18). src/server.ts imports this module only when
// OTEL_EXPORTER_OTLP_ENDPOINT is set: a process without it loads none of the SDK. Everything
// else in src/ uses @opentelemetry/api, whose calls do nothing until start() registers this.
//
// The parts, not @opentelemetry/sdk-node: that package also brings the gRPC and protobuf
// exporters, the metrics and logs SDKs and the auto-instrumentations, which patch modules
// through require hooks that do not reach ES modules without a loader flag (see plugins/tracing.ts).

export type TelemetrySettings = Pick<Config, 'OTEL_SERVICE_NAME' | 'OTEL_TRACES_SAMPLER' | 'OTEL_TRACES_SAMPLER_ARG' | 'OTEL_BSP_SCHEDULE_DELAY'>

/** OTEL_TRACES_SAMPLER and its argument, as the OpenTelemetry specification defines them. */
export function samplerOf ({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: ratio }: Pick<TelemetrySettings, 'OTEL_TRACES_SAMPLER' | 'OTEL_TRACES_SAMPLER_ARG'>): Sampler {
  const root = { always_on: new AlwaysOnSampler(), always_off: new AlwaysOffSampler(), traceidratio: new TraceIdRatioBasedSampler(ratio) }
  switch (name) {
    case 'always_on': case 'always_off': case 'traceidratio': return root[name]
    case 'parentbased_always_on': return new ParentBasedSampler({ root: root.always_on })
    case 'parentbased_always_off': return new ParentBasedSampler({ root: root.always_off })
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: root.traceidratio })
  }
}

/**
 * Registers the tracer provider, the context manager (AsyncLocalStorage: a span stays current
 * across awaits) and the W3C propagators (traceparent, baggage). Spans are exported in batches,
 * every OTEL_BSP_SCHEDULE_DELAY ms, by OTLP/HTTP with JSON bodies to OTEL_EXPORTER_OTLP_ENDPOINT
 * + /v1/traces (the exporter reads that and its other OTEL_EXPORTER_OTLP_* variables itself).
 * `shutdown` exports what is left; call it after the server has closed.
 */
export interface Telemetry {
  /** The SDK's own warnings (an export that failed: the receiver is down or refuses) go to `log`. */
  logTo (log: { warn (fields: object, message: string): void }): void
  shutdown (): Promise<void>
}

export function startTelemetry (settings: TelemetrySettings): Telemetry {
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': settings.OTEL_SERVICE_NAME }))
    // OTEL_RESOURCE_ATTRIBUTES (e.g. deployment.environment.name=prod, service.instance.id=api-1).
    .merge(detectResources({ detectors: [envDetector] }))
  const provider = new TracerProvider({
    resource,
    sampler: samplerOf(settings),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), scheduledDelayMillis: settings.OTEL_BSP_SCHEDULE_DELAY })],
  })
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }))
  trace.setGlobalTracerProvider(provider)
  return {
    logTo (log) {
      const write = (message: string, ...args: unknown[]) => log.warn({ component: 'opentelemetry', details: args.map(String) }, message)
      diag.setLogger({ error: write, warn: write, info () {}, debug () {}, verbose () {} }, DiagLogLevel.WARN)
    },
    async shutdown () {
      await provider.shutdown()
      contextManager.disable()
    },
  }
}
