// First: .env and the thread pool's size, before any module that could use the pool.
import './environment.js'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { DatabaseUnreachableError, prepareDatabase } from './db/prepare.js'
import { tracingEnabled } from './plugins/tracing.js'

async function main () {
  const config = loadConfig(process.env)
  // Traces (API.md §18): the SDK is imported only when there is somewhere to send them, so a
  // process without OTEL_EXPORTER_OTLP_ENDPOINT never loads it. Before the app is built, so
  // that its spans (start-up included) have a provider.
  const telemetry = tracingEnabled(config) ? (await import('./telemetry.js')).startTelemetry(config) : undefined
  await prepareDatabase(config)
  const app = await buildApp(config)
  telemetry?.logTo(app.log)

  // SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close the pool, send the last
  // spans, exit 0.
  closeWithGrace({ delay: 10_000, logger: app.log }, async ({ err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    await app.close()
    // The receiver being away must not fail the shutdown: the spans are lost, and said so.
    await telemetry?.shutdown().catch((error: unknown) =>
      app.log.warn({ code: (error as { code?: string }).code }, 'traces: the last spans could not be exported'))
  })

  await app.listen({ host: config.HOST, port: config.PORT })
  // METRICS_PORT: the metrics' own listener, once the API is up (a CLI never opens it).
  await app.metrics.listen()
}

main().catch((error: unknown) => {
  // Expected start-up failures get one clear line, not a stack trace.
  if (error instanceof ConfigError || error instanceof DatabaseUnreachableError) {
    console.error(`boardkit: ${error.message}`)
  } else {
    console.error('boardkit: failed to start:', error)
  }
  process.exit(1)
})
