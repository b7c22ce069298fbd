import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyServerOptions } from 'fastify'
import { context, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import type { Config } from '../config.js'

// Traces (API.md §18), through @opentelemetry/api alone: a no-op unless src/telemetry.ts has
// registered the SDK, which src/server.ts does only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
// OpenTelemetry's http and fastify instrumentations patch modules as they are require()d; this
// service runs as ES modules (tsx in tests, compiled JavaScript in production), where those hooks
// need a loader flag of their own. So the server span is made here, by hand, around Fastify's
// own request handler, and the statements, argon2, SMTP and Redis make their own child spans.

const tracer = trace.getTracer('boardkit')
const spans = new WeakMap<IncomingMessage, Span>()

export function tracingEnabled (config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT'>): boolean {
  return config.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined
}

/** Whether a request carries a body: Fastify then reads it from the request's own events. */
const hasBody = (request: IncomingMessage) => request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined

/**
 * Each request's server span, started before Fastify sees the request, so that everything of it
 * runs in the span's context: the hooks and the handler (AsyncLocalStorage follows their awaits),
 * and the body's events, which come from the socket and so are bound to the span explicitly
 * (only when there is a body: binding patches the emitter's methods, a cost a GET need not pay).
 * An incoming W3C `traceparent` makes it a child of the caller's span. Named by its method
 * until the router has found the route (the onRequest hook below), as OpenTelemetry's HTTP
 * conventions say.
 */
function tracedHandler (handler: RequestListener): RequestListener {
  return (request: IncomingMessage, response: ServerResponse) => {
    const parent = propagation.extract(ROOT_CONTEXT, request.headers)
    const span = tracer.startSpan(request.method ?? 'HTTP', { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method ?? '' } }, parent)
    spans.set(request, span)
    const active = trace.setSpan(parent, span)
    if (hasBody(request)) context.bind(active, request)
    // 'close' comes after the answer was sent, or when the client went away before it.
    response.once('close', () => {
      span.setAttribute('http.response.status_code', response.statusCode)
      if (response.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
      if (!response.writableFinished) span.setAttribute('error.type', 'connection_closed')
      span.end()
    })
    context.with(active, () => handler(request, response))
  }
}

/**
 * Fastify's options for tracing: a server factory that wraps its handler (see above), given only
 * when tracing is on, so a process without it runs Fastify's own server untouched. The server is
 * made as Fastify itself makes it (lib/server.js), timeouts included.
 */
export function tracingServerOptions (config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT'>): Pick<FastifyServerOptions, 'serverFactory'> {
  if (!tracingEnabled(config)) return {}
  return {
    serverFactory: (handler, options): Server => {
      // Fastify passes its options with its defaults filled in; the published type is looser.
      const settings = options as { http?: object, keepAliveTimeout?: number, requestTimeout?: number, connectionTimeout?: number }
      const server = createServer(settings.http ?? {}, tracedHandler(handler as RequestListener))
      server.keepAliveTimeout = settings.keepAliveTimeout ?? 72_000
      server.requestTimeout = settings.requestTimeout ?? 0
      server.setTimeout(settings.connectionTimeout ?? 0)
      return server
    },
  }
}

/** The trace and span ids of a request's server span, for its log lines. */
function traceFieldsOf (request: IncomingMessage): Record<string, string> {
  const spanContext = spans.get(request)?.spanContext()
  return spanContext && isSpanContextValid(spanContext) ? { trace_id: spanContext.traceId, span_id: spanContext.spanId } : {}
}

/**
 * Every log line of a request carries its trace_id (API.md §18): bound into the request's child
 * logger, which Fastify makes before its "incoming request" line, rather than looked up for each
 * line. And each server span is named after its route template (`GET /boards/:id`), never the URL.
 */
export default fp(async (app) => {
  if (!tracingEnabled(app.config)) return
  app.setChildLoggerFactory((logger, bindings, options, request) => logger.child({ ...bindings, ...traceFieldsOf(request as IncomingMessage) }, options))
  app.addHook('onRequest', (request, _reply, done) => {
    const span = spans.get(request.raw)
    const route = request.is404 ? undefined : request.routeOptions.url
    if (span && route) {
      span.updateName(`${request.method} ${route}`)
      span.setAttribute('http.route', route)
    }
    done()
  })
}, { name: 'tracing', dependencies: ['config'] })
