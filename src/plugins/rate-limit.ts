import fp from 'fastify-plugin'
import fastifyRateLimit from '@fastify/rate-limit'
import type { Config } from '../config.js'
import { AppError } from '../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which per-IP limit applies: `auth` (login, register), `refresh`, or the global one. */
    rateLimitGroup?: 'auth' | 'refresh'
  }
}

const MINUTE = 60_000

/**
 * Per-IP request limits (API.md §6), kept in each process's memory: they blunt floods from one
 * address. Password guessing against one account from many addresses is stopped by the
 * per-account lockout in the database (routes/auth, repositories/login-failures).
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

  await app.register(fastifyRateLimit, {
    global: config.RATE_LIMIT_GLOBAL > 0,
    max: Math.max(config.RATE_LIMIT_GLOBAL, 1),
    timeWindow: MINUTE,
    // RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (IETF draft) and Retry-After.
    enableDraftSpec: true,
    errorResponseBuilder: (_request, context) =>
      new AppError(429, 'rate_limited', `Too many requests; retry in ${context.after}`),
  })
}, { name: 'rate-limit', dependencies: ['config'] })
