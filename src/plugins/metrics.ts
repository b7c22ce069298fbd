import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, STATUS_CODES, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Registry } from 'prom-client'
import type { Config } from '../config.js'
import { AppError } from '../errors.js'
import type { PoolObserver } from '../db/pool.js'
import { ref, ErrorSchema } from '../schemas/shared.js'

// Prometheus metrics (API.md §18). Collected only when they can be read: METRICS_PORT (a
// listener of their own) or METRICS_TOKEN (GET /metrics on the API's port, Bearer token). With
// neither, prom-client is never loaded, no hook runs, and GET /metrics is a 404 like any
// unknown route. Labels carry route templates and classes, never an id, an email or a raw URL,
// so the number of series is fixed by the code, not by the traffic.

export type LoginOutcome = 'succeeded' | 'failed' | 'locked' | 'email_not_verified' | 'mfa_required'
/** POST /login/mfa (API.md §13): which factor, and how it went. */
export type SecondFactorMethod = 'totp' | 'recovery_code' | 'passkey'
export type SecondFactorOutcome = 'succeeded' | 'wrong_code' | 'invalid_token'
export type RateLimit = 'auth' | 'refresh' | 'global' | 'account'
export interface OutboxState {
  /** Messages waiting to be delivered. */
  depth: number
  /** Age of the oldest of them, in seconds (0 when there is none). */
  oldestAgeSeconds: number
}

export interface Metrics {
  /** Whether anything is collected (METRICS_PORT or METRICS_TOKEN set). */
  readonly enabled: boolean
  /** The database pool's reports (db/pool.ts); undefined when nothing is collected. */
  readonly pool: PoolObserver | undefined
  countLogin (outcome: LoginOutcome): void
  countSecondFactor (method: SecondFactorMethod, outcome: SecondFactorOutcome): void
  countRefreshReuse (): void
  countRateLimited (limit: RateLimit): void
  /**
   * The outbox gauges, `boardkit_outbox_depth` and `boardkit_outbox_oldest_age_seconds`: `read`
   * is called once per scrape (it may query a table; src/plugins/outbox.ts does). Until it is
   * called, the two series do not exist, rather than claim an empty outbox. A read that fails
   * makes both NaN for that scrape. A second call replaces the reader.
   */
  observeOutbox (read: () => OutboxState | Promise<OutboxState>): void
  /** The Prometheus text of every metric (what GET /metrics answers). */
  render (): Promise<string>
  /** prom-client's registry of it all (undefined when nothing is collected): its API reads the values back. */
  readonly registry: Registry | undefined
  /** Starts the METRICS_PORT listener, if it is set (src/server.ts, once the API listens); resolves to its URL. */
  listen (): Promise<string | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** The route label of requests that matched no route: one series for every unknown URL. */
export const UNMATCHED_ROUTE = '(unmatched)'

/** Prometheus text exposition format 0.0.4, what every scraper reads. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

const DISABLED: Metrics = Object.freeze({
  enabled: false,
  pool: undefined,
  countLogin () {},
  countSecondFactor () {},
  countRefreshReuse () {},
  countRateLimited () {},
  observeOutbox () {},
  render: async () => '',
  registry: undefined,
  listen: async () => undefined,
})

/** Constant-time comparison of the Authorization header with `Bearer <token>` (hashed first, so lengths do not leak). */
function bearerMatches (header: string | undefined, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest()
  return timingSafeEqual(digest(header ?? ''), digest(`Bearer ${token}`))
}

function metricsAuthError (header: string | undefined) {
  return header === undefined
    ? new AppError(401, 'authorization_required', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>')
    : new AppError(401, 'token_invalid', 'The metrics token is wrong')
}

/** The route template of a request (`/boards/:id`), or one label for every URL no route matched. */
function routeOf (request: FastifyRequest): string {
  return request.is404 ? UNMATCHED_ROUTE : request.routeOptions.url ?? UNMATCHED_ROUTE
}

async function createMetrics (config: Config, log: FastifyBaseLogger) {
  // Loaded only when metrics are on: a process without them does not carry the library.
  const { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } = await import('prom-client')
  const registry = new Registry()
  // Process (CPU, memory, file descriptors) and Node.js (heap, GC, event-loop lag) metrics.
  collectDefaultMetrics({ register: registry })

  // The hot path pays for one histogram observation a request: the request counter is the
  // histogram's per-series _count, copied at scrape time, and the pool's two gauges are plain
  // numbers read at scrape time. (Each prom-client inc/observe hashes its labels.)
  const durations = new Histogram({
    name: 'boardkit_http_request_duration_seconds',
    help: 'Time from the request\'s arrival to its answer, by route template, method and status class',
    labelNames: ['route', 'method', 'status_class'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  new Counter({
    name: 'boardkit_http_requests_total',
    help: 'HTTP requests answered, by route template, method and status class',
    labelNames: ['route', 'method', 'status_class'],
    registers: [registry],
    async collect () {
      // Read, then reset and fill in one synchronous stretch: two scrapes at once cannot interleave.
      const { values } = await durations.get()
      this.reset()
      for (const sample of values) {
        if (sample.metricName === 'boardkit_http_request_duration_seconds_count') this.inc(sample.labels, sample.value)
      }
    },
  })
  let connectionsInUse = 0
  let requestsWaiting = 0
  new Gauge({ name: 'boardkit_db_pool_connections_in_use', help: 'Pooled database connections held by a request or a transaction', registers: [registry], collect () { this.set(connectionsInUse) } })
  new Gauge({ name: 'boardkit_db_pool_waiting_requests', help: 'Requests waiting for a database connection', registers: [registry], collect () { this.set(requestsWaiting) } })
  const acquireTimeouts = new Counter({ name: 'boardkit_db_pool_acquire_timeouts_total', help: 'Waits for a connection that gave up after DB_CONNECT_TIMEOUT (a request\'s is a 503)', registers: [registry] })
  const acquireDurations = new Histogram({
    name: 'boardkit_db_pool_acquire_duration_seconds',
    help: 'Time a request waited for a database connection, by outcome',
    labelNames: ['outcome'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const statements = new Histogram({
    name: 'boardkit_db_statement_duration_seconds',
    help: 'Time of a database statement, from sending it to its answer, by kind',
    labelNames: ['kind'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  })
  const logins = new Counter({ name: 'boardkit_auth_logins_total', help: 'Login outcomes: succeeded (POST /login, or POST /login/mfa), failed (wrong email or password), locked (per-account lockout), email_not_verified, mfa_required (the password was right; a second factor is asked for)', labelNames: ['outcome'], registers: [registry] })
  const secondFactors = new Counter({ name: 'boardkit_auth_second_factor_total', help: 'POST /login/mfa outcomes by method (totp, recovery_code, passkey): succeeded, wrong_code, invalid_token (unknown, expired or spent mfa_token)', labelNames: ['method', 'outcome'], registers: [registry] })
  const refreshReuse = new Counter({ name: 'boardkit_auth_refresh_reuse_detected_total', help: 'Spent refresh tokens presented after the grace period: the session was revoked', registers: [registry] })
  const rateLimited = new Counter({ name: 'boardkit_rate_limit_rejections_total', help: 'Requests refused with 429, by limit: per-IP auth, refresh or global, or the per-account lockout', labelNames: ['limit'], registers: [registry] })
  // Every known label value from the start, so that rate() and absent() work before the first event.
  for (const outcome of ['succeeded', 'failed', 'locked', 'email_not_verified', 'mfa_required']) logins.labels(outcome).inc(0)
  for (const method of ['totp', 'recovery_code', 'passkey']) {
    for (const outcome of ['succeeded', 'wrong_code', 'invalid_token']) secondFactors.labels(method, outcome).inc(0)
  }
  for (const limit of ['auth', 'refresh', 'global', 'account']) rateLimited.labels(limit).inc(0)

  let readOutbox: (() => OutboxState | Promise<OutboxState>) | undefined
  const pool: PoolObserver = {
    waitStarted () {
      requestsWaiting += 1
      const started = performance.now()
      return (outcome) => {
        requestsWaiting -= 1
        acquireDurations.labels(outcome).observe((performance.now() - started) / 1000)
        if (outcome === 'timeout') acquireTimeouts.inc()
      }
    },
    checkedOut: () => { connectionsInUse += 1 },
    checkedIn: () => { connectionsInUse -= 1 },
    statement: (kind, seconds) => statements.labels(kind).observe(seconds),
  }

  let server: Server | undefined
  const metrics = {
    enabled: true,
    pool,
    countLogin: (outcome: LoginOutcome) => logins.labels(outcome).inc(),
    countSecondFactor: (method: SecondFactorMethod, outcome: SecondFactorOutcome) => secondFactors.labels(method, outcome).inc(),
    countRefreshReuse: () => refreshReuse.inc(),
    countRateLimited: (limit: RateLimit) => rateLimited.labels(limit).inc(),
    observeOutbox (read: () => OutboxState | Promise<OutboxState>) {
      if (readOutbox === undefined) {
        // One read per scrape serves both gauges: a scrape starts every collect() in one loop
        // (prom-client's Registry.metrics), before the first read has answered.
        // A read that fails (the database is away) must not fail the scrape, whose other series
        // say what is wrong: both gauges are NaN, Prometheus's "no value", until a read succeeds.
        let pending: Promise<OutboxState> | undefined
        const current = () => {
          pending ??= (async () => readOutbox!())().catch((error: unknown) => {
            log.warn({ code: (error as { code?: string }).code }, 'metrics: the outbox could not be read')
            return { depth: Number.NaN, oldestAgeSeconds: Number.NaN }
          }).finally(() => { pending = undefined })
          return pending
        }
        new Gauge({ name: 'boardkit_outbox_depth', help: 'Outbox messages waiting to be delivered', registers: [registry], async collect () { this.set((await current()).depth) } })
        new Gauge({ name: 'boardkit_outbox_oldest_age_seconds', help: 'Age of the oldest outbox message waiting, in seconds', registers: [registry], async collect () { this.set((await current()).oldestAgeSeconds) } })
      }
      readOutbox = read
    },
    render: () => registry.metrics(),
    registry,
    /** Called on every answer of the API (onResponse). */
    observeRequest (request: FastifyRequest, statusCode: number, seconds: number) {
      const labels = { route: routeOf(request), method: request.method, status_class: `${Math.floor(statusCode / 100)}xx` }
      durations.observe(labels, seconds)
    },
    async listen () {
      if (config.METRICS_PORT === undefined) return undefined
      // Its own listener, outside Fastify: no per-IP limit, no shutdown drain, nothing of the
      // API's routes. Meant for a private interface; METRICS_TOKEN, when set, is asked here too.
      server = createServer((request, response) => {
        const answer = (status: number, body: string, type = 'application/json; charset=utf-8', headers: Record<string, string> = {}) =>
          response.writeHead(status, { 'content-type': type, ...headers }).end(body)
        const error = (status: number, code: string, message: string, headers?: Record<string, string>) =>
          answer(status, JSON.stringify({ statusCode: status, error: STATUS_CODES[status], code, message }), undefined, headers)
        const path = (request.url ?? '').split('?')[0]
        if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) return error(404, 'not_found', `No route ${request.method} ${path}`)
        if (config.METRICS_TOKEN !== undefined && !bearerMatches(request.headers.authorization, config.METRICS_TOKEN)) {
          const refused = metricsAuthError(request.headers.authorization)
          return error(401, refused.code, refused.message, { 'www-authenticate': 'Bearer realm="boardkit"' })
        }
        registry.metrics().then((text) => answer(200, text, CONTENT_TYPE), () => error(500, 'internal_error', 'The metrics could not be collected'))
      })
      await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(config.METRICS_PORT, config.HOST, () => resolve()))
      const { port } = server.address() as AddressInfo
      return `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`
    },
    async close () {
      if (server?.listening) {
        server.closeAllConnections()
        await new Promise((resolve) => server!.close(resolve))
      }
    },
  }
  return metrics satisfies Metrics
}

const MetricsText = Type.String({
  description: 'Prometheus text format 0.0.4: request counts and latency histograms by route template, database pool and statement timings, ' +
    'auth outcomes, rate-limit rejections, outbox depth and oldest age, process and event-loop metrics',
  example: '# HELP boardkit_http_requests_total HTTP requests answered, by route template, method and status class\n' +
    '# TYPE boardkit_http_requests_total counter\nboardkit_http_requests_total{route="/boards/:id",method="GET",status_class="2xx"} 42\n',
})

/** Metrics and `app.metrics`, for the code that counts (routes, pool, limits). Registered before them. */
export default fp(async (app) => {
  const config: Config = app.config
  const on = config.METRICS_PORT !== undefined || config.METRICS_TOKEN !== undefined
  const metrics = on ? await createMetrics(config, app.log) : undefined
  app.decorate('metrics', metrics ?? DISABLED)
  if (!metrics) return
  app.addHook('onResponse', (request, reply, done) => {
    // elapsedTime: milliseconds since Fastify received the request.
    metrics.observeRequest(request, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })
  app.addHook('onClose', () => metrics.close())
}, { name: 'metrics', dependencies: ['config'] })

/**
 * GET /metrics on the API's port: only with a token and no listener of its own, yet documented
 * either way. A route plugin of its own, registered after the docs plugin like every route.
 */
export const metricsRoute: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app
  const servedHere = app.metrics.enabled && config.METRICS_PORT === undefined
  app.get('/metrics', {
    config: { usesDatabase: false },
    schema: {
      tags: ['operations'],
      operationId: 'getMetrics',
      summary: 'Prometheus metrics',
      description: 'Served here only when `METRICS_TOKEN` is set and `METRICS_PORT` is not, to `Authorization: Bearer <METRICS_TOKEN>`; ' +
        'otherwise 404 (with `METRICS_PORT`, the same text is served on that port). No label carries a user id, an email or a raw URL.',
      security: [{ metricsToken: [] }],
      response: {
        200: { description: 'The metrics', content: { [CONTENT_TYPE]: { schema: MetricsText } } },
        401: ref(ErrorSchema, '`authorization_required` (no token) or `token_invalid` (another token than METRICS_TOKEN)'),
        404: ref(ErrorSchema, '`not_found`: metrics are not served on this port (neither METRICS_TOKEN nor METRICS_PORT, or METRICS_PORT is set)'),
      },
    },
  }, async (request, reply) => {
    if (!servedHere) throw new AppError(404, 'not_found', `No route ${request.method} /metrics`)
    if (!bearerMatches(request.headers.authorization, config.METRICS_TOKEN!)) throw metricsAuthError(request.headers.authorization)
    return reply.type(CONTENT_TYPE).send(await app.metrics.render())
  })
}
