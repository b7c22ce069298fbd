import fp from 'fastify-plugin'
import fastifyRateLimit from '@fastify/rate-limit'
import type { Command, Redis } from 'ioredis'
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { AppError } from '../errors.js'
import { clientAddress, rateLimitKey } from './client-address.js'
import { tracingEnabled } from './tracing.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which per-IP limit applies: `auth` (login, register), `refresh`, or the global one. */
    rateLimitGroup?: 'auth' | 'refresh'
  }
}

const MINUTE = 60_000

/**
 * The Redis client of the shared counters (API.md §11). Tuned to fail fast rather than to queue:
 * a request must never wait on Redis. With the offline queue off, a command sent while the
 * connection is down fails at once, and @fastify/rate-limit's skipOnError then serves the request
 * uncounted (limits fail open). ioredis keeps reconnecting by itself, so counting resumes when
 * Redis is back. One warning when counting stops and one line when it resumes, not one per
 * failed reconnect.
 */
async function createRedisClient (url: string, log: FastifyBaseLogger): Promise<Redis> {
  // Loaded only when REDIS_URL is set: a single instance does not carry the client in its heap.
  const { Redis } = await import('ioredis')
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 500,
    // A connection that is open but silent (a dead peer, a cut network) must not hold requests.
    commandTimeout: 250,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    lazyConnect: false,
  })
  let failing = false
  redis.on('error', (error: Error) => {
    if (failing) return
    failing = true
    log.warn({ err: error }, 'Redis unreachable: per-IP limits are not counted until it is back')
  })
  redis.on('ready', () => {
    if (!failing) return
    failing = false
    log.info('Redis reachable again: per-IP limits are counted again')
  })
  return redis
}

/**
 * Each Redis command in a span of its own, a child of the request's (API.md §18). ioredis has
 * no hook for it, and OpenTelemetry's ioredis instrumentation patches through require hooks that
 * do not reach ES modules (plugins/tracing.ts); every command goes through sendCommand, some of
 * them more than once (a retry), hence one span per command object.
 */
function traceCommands (redis: Redis) {
  const tracer = trace.getTracer('boardkit')
  const traced = new WeakSet<Command>()
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = (command, stream) => {
    if (!traced.has(command)) {
      traced.add(command)
      const operation = command.name.toUpperCase()
      const span = tracer.startSpan(`redis ${operation}`, { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'redis', 'db.operation.name': operation } })
      command.promise.then(() => span.end(), (error: unknown) => {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message })
        span.end()
      })
    }
    return send(command, stream)
  }
}

/**
 * Per-IP request limits (API.md §6): they blunt floods from one address. Counted in this
 * process's memory, or in Redis when REDIS_URL is set so that every instance behind a load
 * balancer shares one count (§11). Password guessing against one account from many addresses is
 * stopped by the per-account lockout in the database (routes/auth, repositories/login-failures).
 */
export default fp(async (app) => {
  const config: Config = app.config
  const limitOf = { auth: config.RATE_LIMIT_AUTH, refresh: config.RATE_LIMIT_REFRESH }

  // Map each route's group to its own limit before the rate-limit plugin reads route configs
  // (its onRoute hook is added after this one). 0 turns a limit off.
  app.addHook('onRoute', (route) => {
    const group = route.config?.rateLimitGroup
    if (!group) return
    const max = limitOf[group]
    route.config = { ...route.config, rateLimit: max > 0 ? { max, timeWindow: MINUTE } : false }
  })

  const redis = config.REDIS_URL ? await createRedisClient(config.REDIS_URL, app.log) : undefined
  if (redis && tracingEnabled(config)) traceCommands(redis)
  // disconnect(), not quit(): quit waits for an answer that never comes while Redis is away.
  if (redis) {
    app.addHook('onClose', async () => redis.disconnect())
    // Start counting from the first request when Redis is there; when it is not, start anyway
    // (fail open) rather than keep the instance out of its load balancer.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000)
      redis.once('ready', () => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  await app.register(fastifyRateLimit, {
    global: config.RATE_LIMIT_GLOBAL > 0,
    max: Math.max(config.RATE_LIMIT_GLOBAL, 1),
    timeWindow: MINUTE,
    ...(redis && { redis, nameSpace: config.REDIS_KEY_PREFIX, skipOnError: true }),
    // RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (IETF draft) and Retry-After.
    enableDraftSpec: true,
    // The client under the TRUST_PROXY rule, never an address it wrote itself; IPv6 by /64.
    keyGenerator: (request) => rateLimitKey(clientAddress(request)),
    onExceeded: (request) => app.metrics.countRateLimited(request.routeOptions.config.rateLimitGroup ?? 'global'),
    errorResponseBuilder: (_request, context) =>
      new AppError(429, 'rate_limited', `Too many requests; retry in ${context.after}`),
  })
}, { name: 'rate-limit', dependencies: ['config', 'metrics'] })
